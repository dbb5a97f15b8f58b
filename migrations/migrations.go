// Package migrations holds the database schema as Hasura-CLI-layout SQL
// migrations (default/<13-digit ms version>_<name>/up.sql and down.sql) and
// embeds them so the shala binary can apply them (`shala migrate`) without the
// files on disk. The Hasura CLI reads the same directory.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed default
var files embed.FS

// Default returns the migrations of the default database: one directory
// <version>_<name> per migration at its root.
func Default() fs.FS {
	sub, err := fs.Sub(files, "default")
	if err != nil {
		panic(err) // "default" is a valid path; fs.Sub cannot fail here
	}
	return sub
}
