package lesson

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// Who disabled a server (bbb_server.disabled_by). Heartbeats and connection
// checks re-enable only DisabledUnreachable and DisabledRegistration; the
// alert cron re-enables only DisabledAlert; an operator's disable stays
// until an operator enables the server.
const (
	DisabledOperator     = "operator"
	DisabledAlert        = "alert"
	DisabledUnreachable  = "unreachable"
	DisabledRegistration = "registration"
)

// Servers manages the BigBlueButton server pool: registration, operators'
// disables, heartbeats and connection checks.
type Servers struct {
	pool   *pgxpool.Pool
	queue  queue.Inserter
	client *bbb.Client
	log    *slog.Logger
	// allow lists the host patterns that may self-register by heartbeat
	// ("bbb1.example.org", "*.bbb.example.org").
	allow []string
	// Now is the clock heartbeat timestamps are checked against.
	Now func() time.Time
}

// NewServers returns the pool manager. allow is the self-registration
// allow-list.
func NewServers(pool *pgxpool.Pool, q queue.Inserter, client *bbb.Client, log *slog.Logger, allow []string) *Servers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Servers{pool: pool, queue: q, client: client, log: log, allow: allow, Now: time.Now}
}

// Server is a pool member as admins see it.
type Server struct {
	ID             uuid.UUID
	Hostname       string
	Enabled        bool
	DisabledReason string
	DisabledBy     string
}

// NewServer is what addBBBServer registers.
type NewServer struct {
	URL, Secret, Region string
	Capacity            int
	CPUCount            int // 0: unknown until the first heartbeat (1)
}

// negotiate finds the checksum algorithm the server accepts with secret:
// SHA-256, then SHA-512, then SHA-1 only if the server asks for it by
// refusing the others. It returns the server's meeting count.
func negotiate(ctx context.Context, c *bbb.Client, base, secret string, first bbb.Algorithm) (bbb.Algorithm, int, error) {
	order := []bbb.Algorithm{bbb.SHA256, bbb.SHA512, bbb.SHA1}
	if first != "" && first != bbb.SHA256 {
		order = append([]bbb.Algorithm{first}, order...)
	}
	var err error
	for _, a := range order {
		var ms []bbb.MeetingInfo
		ms, err = c.GetMeetings(ctx, bbb.Server{URL: base, Secret: secret, Algorithm: a})
		if err == nil {
			return a, len(ms), nil
		}
		if !bbb.IsChecksumError(err) {
			return "", 0, err
		}
	}
	return "", 0, err
}

// checkFault turns a failed connection check into what the caller should
// fix.
func checkFault(err error) error {
	switch {
	case errors.Is(err, bbb.ErrUnreachable):
		return fault.Wrap(err, fault.Unprocessable, CodeServerUnreachable, "url: the server did not answer a signed getMeetings call; check the URL")
	case bbb.IsChecksumError(err):
		return &fault.Error{Kind: fault.Unprocessable, Code: CodeChecksumRefused, Field: "secret", Err: err,
			Message: "secret: the server refused the checksum with sha256, sha512 and sha1; check the secret (bbb-conf --secret)"}
	default:
		return err
	}
}

// Add checks the server with a signed getMeetings call, then registers it
// enabled; the check counts as its first heartbeat. by is the admin's user
// id.
func (s *Servers) Add(ctx context.Context, by string, in NewServer) (Server, error) {
	base, host, err := bbb.NormalizeURL(in.URL)
	if err != nil {
		return Server{}, fault.Invalidf("url", "%v", err)
	}
	secret := strings.TrimSpace(in.Secret)
	if n := len(secret); n < 8 || n > 256 {
		return Server{}, fault.Invalidf("secret", "must be 8–256 characters (bbb-conf --secret shows it)")
	}
	region, err := CleanRegion("region", in.Region)
	if err != nil {
		return Server{}, err
	}
	if in.Capacity < 1 || in.Capacity > 100000 {
		return Server{}, fault.Invalidf("capacity", "users the server takes at once: 1–100000 (got %d)", in.Capacity)
	}
	cpus := in.CPUCount
	if cpus == 0 {
		cpus = 1
	}
	if cpus < 1 || cpus > 1024 {
		return Server{}, fault.Invalidf("cpuCount", "1–1024 (got %d)", in.CPUCount)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM bbb_server WHERE hostname = $1)`, host).Scan(&exists); err != nil {
		return Server{}, postgres.Translate(err, "server")
	}
	if exists {
		return Server{}, fault.New(fault.Conflict, CodeServerExists, "url: a server on %s is registered already", host)
	}
	alg, meetings, err := negotiate(ctx, s.client, base, secret, "")
	if err != nil {
		return Server{}, checkFault(err)
	}
	srv := Server{Hostname: host, Enabled: true}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO bbb_server (hostname, api_url, checksum_algorithm, enabled, region, cpu_count, capacity,
				meetings, last_heartbeat_at, created_by)
			VALUES ($1, $2, $3, true, $4, $5, $6, $7, now(), nullif($8, '')) RETURNING id`,
			host, base, string(alg), region, cpus, in.Capacity, meetings, by).Scan(&srv.ID)
		if err != nil {
			if f := fault.As(postgres.Translate(err, "server")); f.Kind == fault.Conflict {
				return fault.New(fault.Conflict, CodeServerExists, "url: a server on %s is registered already", host)
			}
			return postgres.Translate(err, "server")
		}
		_, err = tx.Exec(ctx, `INSERT INTO bbb_server_secret (server_id, secret) VALUES ($1, $2)`, srv.ID, secret)
		return postgres.Translate(err, "server secret")
	})
	if err != nil {
		return Server{}, err
	}
	s.log.InfoContext(ctx, "bbb server added", "server_id", srv.ID, "host", host, "algorithm", alg)
	return srv, nil
}

// Disable takes a server out of the pool for new lessons (running lessons
// go on). Only an operator brings it back: heartbeats and alerts never do.
func (s *Servers) Disable(ctx context.Context, by string, id uuid.UUID, reason string) (Server, error) {
	reason, err := cleanName("reason", reason, 500)
	if err != nil {
		return Server{}, err
	}
	who := DisabledOperator
	if by != "" {
		who += ":" + by
	}
	srv := Server{ID: id}
	var r, b *string
	err = s.pool.QueryRow(ctx, `UPDATE bbb_server SET enabled = false, disabled_by = $2, disabled_reason = $3, disabled_at = now()
		WHERE id = $1 RETURNING hostname, enabled, disabled_reason, disabled_by`, id, who, reason).
		Scan(&srv.Hostname, &srv.Enabled, &r, &b)
	if err != nil {
		return Server{}, postgres.Translate(err, "server "+id.String())
	}
	srv.DisabledReason, srv.DisabledBy = deref(r), deref(b)
	return srv, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Heartbeat is what a BBB node reports, as JSON, signed with its own API
// secret: header X-Shala-Signature: sha256=hex(HMAC-SHA256(secret, body)).
// A node that is not registered yet registers with its first heartbeat if
// its hostname is on the allow-list: it then also sends apiUrl, secret and
// capacity (and checksumAlgorithm if it needs one), and shala checks the
// connection with a signed getMeetings before enabling it.
type Heartbeat struct {
	Hostname  string  `json:"hostname"`
	Timestamp int64   `json:"timestamp"` // Unix seconds; ±5 minutes of shala's clock, newer than the last accepted
	Load5     float64 `json:"load5"`
	CPUs      int     `json:"cpus"`
	Users     int     `json:"users"`
	Meetings  int     `json:"meetings"`
	Region    string  `json:"region"`
	// Registration only.
	APIURL            string `json:"apiUrl,omitempty"`
	Secret            string `json:"secret,omitempty"`
	Capacity          int    `json:"capacity,omitempty"`
	ChecksumAlgorithm string `json:"checksumAlgorithm,omitempty"`
}

// SignatureHeader carries a heartbeat's HMAC.
const SignatureHeader = "X-Shala-Signature"

// Sign is the value of SignatureHeader for body signed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func signatureOK(secret string, body []byte, got string) bool {
	return secret != "" && hmac.Equal([]byte(Sign(secret, body)), []byte(got))
}

// HeartbeatResult says what a heartbeat did.
type HeartbeatResult struct {
	ServerID   uuid.UUID `json:"serverId"`
	Registered bool      `json:"registered"` // a new node: enabled once its connection check passes
	Enabled    bool      `json:"enabled"`
}

// maxSkew bounds a heartbeat's timestamp (old bodies are refused; within
// the window, a heartbeat must also be newer than the last one accepted).
const maxSkew = 5 * time.Minute

func (hb *Heartbeat) validate() error {
	switch {
	case hb.Hostname == "":
		return fault.Invalidf("hostname", "required")
	case hb.Load5 < 0 || hb.Load5 > 1e6:
		return fault.Invalidf("load5", "must be ≥ 0")
	case hb.CPUs < 1 || hb.CPUs > 1024:
		return fault.Invalidf("cpus", "1–1024 (got %d)", hb.CPUs)
	case hb.Users < 0 || hb.Users > 1e6:
		return fault.Invalidf("users", "must be ≥ 0")
	case hb.Meetings < 0 || hb.Meetings > 1e6:
		return fault.Invalidf("meetings", "must be ≥ 0")
	}
	return nil
}

// HostAllowed reports whether host (host[:port]) matches a pattern of the
// allow-list: an exact hostname, or *.suffix for any name under suffix.
func HostAllowed(allow []string, host string) bool {
	name := strings.ToLower(host)
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	for _, p := range allow {
		p = strings.ToLower(strings.TrimSpace(p))
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(name, "."+suffix) {
				return true
			}
		} else if p != "" && (p == name || p == strings.ToLower(host)) {
			return true
		}
	}
	return false
}

// Heartbeat records a node's report. body is the raw request body and
// signature its SignatureHeader.
func (s *Servers) Heartbeat(ctx context.Context, body []byte, signature string) (HeartbeatResult, error) {
	var hb Heartbeat
	if err := json.Unmarshal(body, &hb); err != nil {
		return HeartbeatResult{}, fault.Invalidf("body", "not a heartbeat: %v", err)
	}
	hb.Hostname = strings.ToLower(strings.TrimSpace(hb.Hostname))
	if err := hb.validate(); err != nil {
		return HeartbeatResult{}, err
	}
	var region *string
	if hb.Region != "" {
		r, err := CleanRegion("region", hb.Region)
		if err != nil {
			return HeartbeatResult{}, err
		}
		region = &r
	}

	var id uuid.UUID
	var secret, disabledBy *string
	var enabled bool
	err := s.pool.QueryRow(ctx, `SELECT s.id, sec.secret, s.enabled, s.disabled_by FROM bbb_server s
		LEFT JOIN bbb_server_secret sec ON sec.server_id = s.id WHERE s.hostname = $1`, hb.Hostname).
		Scan(&id, &secret, &enabled, &disabledBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.register(ctx, hb, region, body, signature, nil)
	}
	if err != nil {
		return HeartbeatResult{}, postgres.Translate(err, "server")
	}
	if (secret == nil || !signatureOK(*secret, body, signature)) && disabledBy != nil && *disabledBy == DisabledRegistration {
		// A registration nobody has verified yet (its secret never passed a
		// connection check) does not reserve the hostname: a new one with
		// another secret replaces it, and the check decides which secret the
		// real server has. Otherwise whoever registered a hostname first —
		// with any secret — would lock its real node out.
		return s.register(ctx, hb, region, body, signature, &id)
	}
	if secret == nil || !signatureOK(*secret, body, signature) {
		return HeartbeatResult{}, fault.New(fault.Unauthorized, CodeBadSignature, "%s does not match the body signed with the server's secret", SignatureHeader)
	}
	// Checked after the signature: an unsigned body does not learn the clock.
	if err := s.fresh(hb); err != nil {
		return HeartbeatResult{}, err
	}
	res := HeartbeatResult{ServerID: id, Enabled: enabled}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Only a newer report counts: a replayed or late one changes nothing.
		tag, err := tx.Exec(ctx, `UPDATE bbb_server SET load_5m = $2, cpu_count = $3, users = $4, meetings = $5,
				region = coalesce($6, region), last_heartbeat_at = now(), heartbeat_sent_at = $7
			WHERE id = $1 AND (heartbeat_sent_at IS NULL OR heartbeat_sent_at < $7)`,
			id, hb.Load5, hb.CPUs, hb.Users, hb.Meetings, region, time.Unix(hb.Timestamp, 0))
		if err != nil {
			return postgres.Translate(err, "server")
		}
		if tag.RowsAffected() == 0 {
			return fault.Invalidf("timestamp", "not newer than the last heartbeat accepted from %s (a replay, or one sent out of order)", hb.Hostname)
		}
		if !enabled && disabledBy != nil && (*disabledBy == DisabledUnreachable || *disabledBy == DisabledRegistration) {
			// The node is alive: check that shala can reach its API before
			// putting it back.
			_, err := s.queue.InsertTx(ctx, tx, CheckArgs{ServerID: id}, nil)
			return err
		}
		return nil
	})
	return res, err
}

func (s *Servers) fresh(hb Heartbeat) error {
	now := s.Now()
	if at := time.Unix(hb.Timestamp, 0); at.Before(now.Add(-maxSkew)) || at.After(now.Add(maxSkew)) {
		return fault.Invalidf("timestamp", "must be within 5 minutes of the current time (Unix seconds)")
	}
	return nil
}

// register records a new node from its first heartbeat, disabled until the
// connection check passes.
func (s *Servers) register(ctx context.Context, hb Heartbeat, region *string, body []byte, signature string, pending *uuid.UUID) (HeartbeatResult, error) {
	if !HostAllowed(s.allow, hb.Hostname) {
		return HeartbeatResult{}, fault.New(fault.Forbidden, CodeHostNotAllowed, "hostname %s is not registered and not on the allow-list", hb.Hostname)
	}
	secret := strings.TrimSpace(hb.Secret)
	if !signatureOK(secret, body, signature) {
		return HeartbeatResult{}, fault.New(fault.Unauthorized, CodeBadSignature, "%s does not match the body signed with the secret it carries", SignatureHeader)
	}
	if err := s.fresh(hb); err != nil {
		return HeartbeatResult{}, err
	}
	if n := len(secret); n < 8 || n > 256 {
		return HeartbeatResult{}, fault.Invalidf("secret", "registration needs the API secret (8–256 characters)")
	}
	base, host, err := bbb.NormalizeURL(hb.APIURL)
	if err != nil {
		return HeartbeatResult{}, fault.Invalidf("apiUrl", "%v", err)
	}
	if host != hb.Hostname {
		return HeartbeatResult{}, fault.Invalidf("apiUrl", "host %s is not hostname %s", host, hb.Hostname)
	}
	alg, err := bbb.ParseAlgorithm(hb.ChecksumAlgorithm)
	if err != nil {
		return HeartbeatResult{}, fault.Invalidf("checksumAlgorithm", "%v", err)
	}
	if hb.Capacity < 1 || hb.Capacity > 100000 {
		return HeartbeatResult{}, fault.Invalidf("capacity", "registration needs the users the server takes at once: 1–100000")
	}
	if region == nil {
		return HeartbeatResult{}, fault.Invalidf("region", "registration needs the server's region")
	}
	res := HeartbeatResult{Registered: true}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if pending != nil {
			res.ServerID = *pending
			tag, err := tx.Exec(ctx, `UPDATE bbb_server SET api_url = $2, checksum_algorithm = $3, region = $4, cpu_count = $5,
					load_5m = $6, users = $7, meetings = $8, capacity = $9, last_heartbeat_at = now(), heartbeat_sent_at = $10,
					disabled_reason = 'registered by heartbeat; connection check pending'
				WHERE id = $1 AND disabled_by = 'registration'`,
				*pending, base, string(alg), *region, hb.CPUs, hb.Load5, hb.Users, hb.Meetings, hb.Capacity, time.Unix(hb.Timestamp, 0))
			if err != nil {
				return postgres.Translate(err, "server")
			}
			if tag.RowsAffected() == 0 {
				return fault.New(fault.Conflict, "", "%s was verified meanwhile; sign with its registered secret", hb.Hostname)
			}
			if _, err := tx.Exec(ctx, `UPDATE bbb_server_secret SET secret = $2, updated_at = now() WHERE server_id = $1`, *pending, secret); err != nil {
				return postgres.Translate(err, "server secret")
			}
			_, err = s.queue.InsertTx(ctx, tx, CheckArgs{ServerID: res.ServerID}, nil)
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO bbb_server (hostname, api_url, checksum_algorithm, enabled, disabled_by, disabled_reason,
				region, cpu_count, load_5m, users, meetings, capacity, last_heartbeat_at, heartbeat_sent_at, created_by)
			VALUES ($1, $2, $3, false, 'registration', 'registered by heartbeat; connection check pending',
				$4, $5, $6, $7, $8, $9, now(), $10, 'heartbeat') RETURNING id`,
			hb.Hostname, base, string(alg), *region, hb.CPUs, hb.Load5, hb.Users, hb.Meetings, hb.Capacity, time.Unix(hb.Timestamp, 0)).Scan(&res.ServerID)
		if err != nil {
			return postgres.Translate(err, "server")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO bbb_server_secret (server_id, secret) VALUES ($1, $2)`, res.ServerID, secret); err != nil {
			return postgres.Translate(err, "server secret")
		}
		_, err = s.queue.InsertTx(ctx, tx, CheckArgs{ServerID: res.ServerID}, nil)
		return err
	})
	if err != nil {
		return HeartbeatResult{}, err
	}
	s.log.InfoContext(ctx, "bbb server registered by heartbeat", "server_id", res.ServerID, "host", hb.Hostname)
	return res, nil
}

// CheckArgs asks for a connection check of a disabled server (after a
// heartbeat from it, or its registration): a signed getMeetings; success
// re-enables it unless an operator or an alert disabled it meanwhile. At most
// one per server per minute.
type CheckArgs struct {
	ServerID uuid.UUID `json:"server_id" river:"unique"`
}

// Kind is the River job kind.
func (CheckArgs) Kind() string { return "lesson.server_check" }

// InsertOpts: unique per server per minute, few attempts (the next
// heartbeat asks again).
func (CheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Minute}}
}

// CheckWorker works CheckArgs.
type CheckWorker struct {
	river.WorkerDefaults[CheckArgs]
	Pool *pgxpool.Pool
	BBB  *bbb.Client
	Log  *slog.Logger
}

// Timeout covers the negotiation (up to three calls of SHALA_BBB_TIMEOUT,
// 5 s by default), within the rescue rule (queue.MaxTimeout).
func (w *CheckWorker) Timeout(*river.Job[CheckArgs]) time.Duration { return queue.MaxTimeout }

// Work checks the server and re-enables it on success.
func (w *CheckWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	return NewServers(w.Pool, river.ClientFromContext[pgx.Tx](ctx), w.BBB, w.Log, nil).check(ctx, job.Args.ServerID)
}

func (s *Servers) check(ctx context.Context, id uuid.UUID) error {
	var base, alg, secret string
	var disabledBy *string
	err := s.pool.QueryRow(ctx, `SELECT s.api_url, s.checksum_algorithm, sec.secret, s.disabled_by FROM bbb_server s
		JOIN bbb_server_secret sec ON sec.server_id = s.id WHERE s.id = $1`, id).Scan(&base, &alg, &secret, &disabledBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("server %s is gone", id))
	}
	if err != nil {
		return err
	}
	if disabledBy == nil || (*disabledBy != DisabledUnreachable && *disabledBy != DisabledRegistration) {
		return nil // enabled, or disabled by someone a check does not override
	}
	got, _, err := negotiate(ctx, s.client, base, secret, bbb.Algorithm(alg))
	if bbb.IsChecksumError(err) {
		_, uerr := s.pool.Exec(ctx, `UPDATE bbb_server SET disabled_reason = 'connection check: the server refused the checksum with every algorithm; fix the secret'
			WHERE id = $1 AND NOT enabled AND disabled_by IN ('unreachable', 'registration')`, id)
		return errors.Join(river.JobCancel(err), uerr)
	}
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE bbb_server SET enabled = true, checksum_algorithm = $2
		WHERE id = $1 AND NOT enabled AND disabled_by IN ('unreachable', 'registration')`, id, string(got))
	if err == nil && tag.RowsAffected() == 1 {
		s.log.InfoContext(ctx, "bbb server enabled after a connection check", "server_id", id)
	}
	return err
}

// markUnreachableSQL disables server $1 after a failed call ($2 the
// reason), unless it is disabled already: an operator's or an alert's
// disable stays as it is.
const markUnreachableSQL = `UPDATE bbb_server SET enabled = false, disabled_by = 'unreachable', disabled_reason = $2, disabled_at = now()
	WHERE id = $1 AND enabled`

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
