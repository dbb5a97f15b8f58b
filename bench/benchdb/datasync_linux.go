package benchdb

import (
	"os"
	"syscall"
)

// datasync flushes f's data (not its timestamps) as Postgres's default
// wal_sync_method on Linux does.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
