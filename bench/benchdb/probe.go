package benchdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/bench/wrk"
)

// DiskProbe is what a disk probe saw: the latency of each small durable
// write (one 8 KiB page overwritten, then fdatasync, as Postgres flushes
// its WAL on Linux). Its writes do not go through Postgres. A slow one
// shows the disk was slow to make a write durable at that moment, for
// whatever reason: the device, the host, or the load the benchmark itself
// puts on the disk.
type DiskProbe struct {
	Syncs int
	P50   time.Duration
	Max   time.Duration
	Slow  int // syncs that took longer than the probe's slow line
	// Beyond is how far the slow syncs went past the line, in all. By
	// wrk's correction (bench/wrk.Correct) a stall of every request in
	// flight breaks a p99 at the line once this reaches ~1% of the run.
	Beyond time.Duration
}

// ProbeDir is where to probe the disk of pool's database: beside its data
// directory, when that is on this machine; "" when it cannot tell (a
// remote database, or no right to read the setting).
func ProbeDir(ctx context.Context, pool *pgxpool.Pool) string {
	var data string
	if err := pool.QueryRow(ctx, "SHOW data_directory").Scan(&data); err != nil {
		return ""
	}
	dir := filepath.Dir(data)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}

// ProbeDisk writes and syncs (fdatasync) one 8 KiB page every interval,
// in a file under dir, until the returned function is called; that
// function stops the probe, removes the file and returns what it saw,
// counting syncs over slow as slow. At 10 ms it adds 100 flushes a second
// to the disk it watches (the webhook run flushes its WAL ~300 times a
// second): not nothing, which is why bench/events can run without it.
func ProbeDisk(dir string, interval, slow time.Duration) (func() (DiskProbe, error), error) {
	f, err := os.CreateTemp(dir, "disk-probe-")
	if err != nil {
		return nil, err
	}
	const page, pages = 8 << 10, 256
	// The pages exist before the probe starts, so each sync flushes data,
	// not a change of the file's size (as a recycled WAL segment does).
	if _, err := f.Write(make([]byte, page*pages)); err != nil {
		return nil, errors.Join(err, f.Close(), os.Remove(f.Name()))
	}
	if err := f.Sync(); err != nil {
		return nil, errors.Join(err, f.Close(), os.Remove(f.Name()))
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, page)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			buf[0] = byte(i)
			t := time.Now()
			_, err := f.WriteAt(buf, int64(i%pages)*page)
			if err == nil {
				err = datasync(f)
			}
			d := time.Since(t)
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			lat = append(lat, d)
			mu.Unlock()
		}
	}()
	return func() (DiskProbe, error) {
		close(stop)
		<-done
		err := errors.Join(firstErr, f.Close(), os.Remove(f.Name()))
		if len(lat) == 0 {
			return DiskProbe{}, err
		}
		slices.Sort(lat)
		p := DiskProbe{Syncs: len(lat), P50: wrk.Percentile(lat, 0.50), Max: lat[len(lat)-1], Slow: wrk.Over(lat, slow)}
		for _, d := range lat[len(lat)-p.Slow:] {
			p.Beyond += d - slow
		}
		return p, err
	}, nil
}
