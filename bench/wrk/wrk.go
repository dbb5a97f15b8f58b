// Package wrk runs the wrk HTTP load generator (Debian package wrk) with a
// Lua script and parses its report. On a 2-core machine a Go load generator
// takes the CPU the server under test needs; wrk takes far less.
package wrk

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// Installed reports whether wrk is on PATH.
func Installed() bool {
	_, err := exec.LookPath("wrk")
	return err == nil
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
	cmd := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
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
