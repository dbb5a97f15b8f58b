// Package pgcluster starts PostgreSQL servers from the binaries installed on
// the machine. It exists so that tests, benchmarks and the local default
// (`shala dev`) get a real, private Postgres without Docker: it runs initdb
// and postgres directly, as the `postgres` OS user when the caller is root
// (initdb refuses to run as root), on a free loopback port.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogSettings keeps personal data out of the server log: a failed
// statement's DETAIL ("Failing row contains (…)", "Key (phone)=(…) already
// exists") and its STATEMENT text carry the values that were written, such
// as submission XML or phone numbers. Every cluster this package starts
// uses them (dev, tests, benchmarks); production should set the same (see
// the README's Guarantees). Options.Settings can override them.
func LogSettings() map[string]string {
	return map[string]string{"log_error_verbosity": "terse", "log_min_error_statement": "panic"}
}

// Options configure a cluster.
type Options struct {
	// Dir is the data directory. It is initialised with initdb when it holds
	// no cluster yet and kept afterwards; the caller decides whether to
	// remove it.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Durable keeps fsync and synchronous_commit on. Tests turn them off for
	// speed; benchmarks and the local default keep them on.
	Durable bool
	// Settings are extra postgres -c settings.
	Settings map[string]string
	// Log receives the server's output; nil discards it.
	Log io.Writer
}

// Cluster is a running PostgreSQL server owned by this process.
type Cluster struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

// BinDir finds the directory holding initdb and postgres: PATH first, then
// the Debian layout /usr/lib/postgresql/<version>/bin (newest version).
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dir := filepath.Dir(real)
			if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
				return dir, nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL binaries: neither initdb on PATH nor /usr/lib/postgresql/*/bin/initdb (apt-get install -y postgresql)")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises the data directory when needed and starts postgres. The
// server is a child of this process: it receives SIGQUIT if the process dies,
// so a killed test run does not leave servers behind.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown data dir to postgres: %w", err)
		}
		if err := checkTraversable(dir); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		init := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
			"-D", dir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
		init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out bytes.Buffer
		init.Stdout, init.Stderr = &out, &out
		if err := init.Run(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w: %s", dir, err, out.String())
		}
	}
	// A previous run killed hard leaves a stale postmaster.pid; postgres
	// itself checks whether that pid is alive, so leaving it is safe.

	port := opts.Port
	for attempt := 0; ; attempt++ {
		if opts.Port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		c, err := launch(ctx, bin, dir, port, cred, opts)
		if err == nil {
			return c, nil
		}
		if opts.Port != 0 || attempt >= 3 {
			return nil, err
		}
	}
}

func launch(ctx context.Context, bin, dir string, port int, cred *syscall.Credential, opts Options) (*Cluster, error) {
	args := []string{"-D", dir, "-p", strconv.Itoa(port), "-k", "", "-h", "127.0.0.1",
		"-c", "max_connections=200"}
	settings := map[string]string{}
	for k, v := range LogSettings() {
		settings[k] = v
	}
	if !opts.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}

	var logs bytes.Buffer
	out := io.Writer(&logs)
	if opts.Log != nil {
		out = io.MultiWriter(&logs, opts.Log)
	}
	c := &Cluster{dir: dir, port: port, done: make(chan error, 1)}
	started := make(chan error, 1)
	// Pdeathsig is tied to the OS thread that forked the child, so the
	// goroutine that starts postgres keeps its thread for the life of the
	// process: the signal then fires only when the process itself dies.
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		c.cmd = cmd
		started <- nil
		c.done <- cmd.Wait()
		select {} // keep the locked thread alive: see above
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		// Something may answer on the port before ours does: make sure it
		// is the server just started, not one left running on this port or
		// on this data directory (whose start made ours exit).
		dataDir, answered := c.dataDirectory(ctx)
		owner, ours := c.owner()
		if answered && ours && dataDir == dir {
			return c, nil
		}
		if answered {
			if err := c.elsewhere(dir, dataDir, owner); err != nil {
				c.Stop()
				return nil, err
			}
		}
		select {
		case werr := <-c.done:
			c.done <- werr // for Stop
			if dataDir, answered := c.dataDirectory(ctx); answered {
				if err := c.elsewhere(dir, dataDir, owner); err != nil {
					return nil, err
				}
			}
			if owner != 0 && !ours && alive(owner) {
				return nil, &RunningError{Dir: dir, Port: port, PID: owner}
			}
			return nil, fmt.Errorf("postgres exited (%v): %s", werr, logs.String())
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("postgres did not accept connections within 30s: %s", logs.String())
		}
	}
}

// dataDirectory asks whatever answers on the cluster's port for its data
// directory.
func (c *Cluster) dataDirectory(ctx context.Context) (string, bool) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", false
	}
	defer conn.Close(ctx)
	var dir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return "", false
	}
	return dir, true
}

// elsewhere explains a server answering on the port that is not ours: one
// of another data directory, or another postmaster of this one.
func (c *Cluster) elsewhere(dir, answering string, owner int) error {
	if answering != dir {
		return fmt.Errorf("port %d is taken by another PostgreSQL server (data directory %s)", c.port, answering)
	}
	if _, ours := c.owner(); !ours && owner != 0 {
		return &RunningError{Dir: dir, Port: c.port, PID: owner}
	}
	return nil
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RunningError reports a data directory already in use by a live server
// that this process did not start.
type RunningError struct {
	Dir  string
	Port int
	PID  int
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("a PostgreSQL server (pid %d) is already running on %s; stop it first", e.PID, e.Dir)
}

// owner reads the postmaster pid of the data directory and reports whether
// it is the server this Cluster started.
func (c *Cluster) owner() (pid int, ours bool) {
	b, err := os.ReadFile(filepath.Join(c.dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, _ = strconv.Atoi(string(bytes.TrimSpace(line)))
	return pid, c.cmd != nil && c.cmd.Process != nil && pid == c.cmd.Process.Pid
}

// URL is a connection string for database db as the postgres superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Port is the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Dir is the data directory.
func (c *Cluster) Dir() string { return c.dir }

// Stop shuts the server down (fast mode: open sessions are rolled back) and
// waits for it to exit.
func (c *Cluster) Stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// serverCredential is the identity postgres runs as: the postgres user when
// we are root, otherwise ourselves (nil).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run initdb as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// checkTraversable reports, before initdb fails obscurely, when a parent of
// the data directory cannot be entered by the postgres user.
func checkTraversable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the postgres user cannot enter %s (mode %v): put the data directory elsewhere or chmod o+x %s", d, fi.Mode().Perm(), d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PrepareDir creates dir so that the server user can own a data directory
// inside it: a temp dir made by root is 0700 and postgres could not enter it.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}
