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
// write (one 8 KiB page written, then fsync), as a commit's WAL flush is.
// Its writes do not go through Postgres, so a slow one is the disk's own
// stall, not shala's nor Postgres's.
type DiskProbe struct {
	Syncs int
	P50   time.Duration
	Max   time.Duration
	Slow  int // syncs that took longer than the probe's slow line
	// Stalled is how long the slow syncs took in all: the time in which
	// no durable write could complete.
	Stalled time.Duration
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

// ProbeDisk writes and syncs (File.Sync: fsync) one 8 KiB page every
// interval, in a file under dir, until the returned function is called; that function stops
// the probe, removes the file and returns what it saw, counting syncs over
// slow as slow. It writes about 8 KiB/interval — at 10 ms, 0.8 MB/s,
// small beside the WAL of the load it watches.
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
				err = f.Sync()
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
			p.Stalled += d
		}
		return p, err
	}, nil
}
