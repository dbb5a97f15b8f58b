//go:build !linux

package benchdb

import "os"

// datasync flushes f; where fdatasync is missing, with fsync.
func datasync(f *os.File) error { return f.Sync() }
