// Package blob opens shala's file storage: a gocloud.dev bucket from
// SHALA_BLOB_URL — file:// on one machine (the local default), s3:// for
// MinIO, S3 or R2 — so the code that stores exam files, certificates and
// form attachments does not care which.
package blob

import (
	"context"
	"fmt"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/s3blob"   // s3://
)

// Bucket is the storage handle.
type Bucket = blob.Bucket

// Open opens the bucket at url.
func Open(ctx context.Context, url string) (*Bucket, error) {
	if url == "" {
		return nil, fmt.Errorf("SHALA_BLOB_URL: required (file:///abs/dir?create_dir=true or s3://bucket?…)")
	}
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("SHALA_BLOB_URL: %w", err)
	}
	return b, nil
}
