// Package wrk runs the wrk HTTP load generator (Debian package wrk) with a
// Lua script and parses its report. On a 2-core machine a Go load generator
// takes the CPU the server under test needs; wrk takes far less.
package wrk

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Installed reports whether wrk can be run: on PATH, or where `make tools`
// (.ci/tools.sh) unpacks it, .tools/bin of the module that holds the
// working directory.
func Installed() bool {
	_, err := binary()
	return err == nil
}

// binary is wrk's path: PATH first, then .tools/bin/wrk in the working
// directory or the nearest parent that has a go.mod.
func binary() (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return exec.LookPath(filepath.Join(dir, ".tools", "bin", "wrk"))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("wrk: not on PATH and no .tools/bin/wrk (make tools)")
		}
		dir = parent
	}
}

// Result is a wrk run.
type Result struct {
	PerSecond float64 // successful (2xx/3xx) requests per second
	OK        int64
	Failures  int64 // non-2xx/3xx answers and socket errors
	P50, P99  time.Duration
}

// Run drives url with conns connections for d, the requests built by
// script, with env added to wrk's environment.
func Run(url string, script []byte, env map[string]string, conns int, d time.Duration) (Result, error) {
	f, err := os.CreateTemp("", "wrk-*.lua")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(script); err != nil {
		return Result{}, err
	}
	f.Close()
	bin, err := binary()
	if err != nil {
		return Result{}, err
	}
	cmd := exec.Command(bin, "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"--timeout", "30s", "--latency", "-s", f.Name(), url)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parse(string(out))
}

var (
	wrkTotal    = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErrs = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parse(out string) (Result, error) {
	var r Result
	m := wrkTotal.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output not understood: %s", out)
	}
	total, _ := strconv.ParseInt(m[1], 10, 64)
	elapsed, err := time.ParseDuration(m[2] + m[3])
	if err != nil {
		return r, err
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Failures, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSockErrs.FindStringSubmatch(out); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.Failures += n
		}
	}
	r.OK = total - r.Failures
	r.PerSecond = float64(r.OK) / elapsed.Seconds()
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := time.ParseDuration(m[2] + m[3])
		if m[1] == "50" {
			r.P50 = v
		} else {
			r.P99 = v
		}
	}
	return r, nil
}
