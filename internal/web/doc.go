// Package web serves shala's public, non-Hasura HTTP endpoints: what a
// phone camera opens from a certificate's QR code, the published signing
// keys, and certificate PDFs. One file per endpoint group; each maker takes
// exactly the dependencies it uses. Every route here is rate limited per IP
// by routes.go.
package web
