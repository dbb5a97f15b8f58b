// Package jobs lists every River job kind shala works and every periodic
// job, with the dependencies each worker gets — the queue's counterpart of
// routes.go: read this file to know everything shala does in the background.
package jobs

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/eventlog"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/student"
)

// Deps are what workers need, built once by internal/app.
type Deps struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Analytics sends product events to PostHog (nil: no sender, for
	// tools that build workers without one).
	Analytics *analytics.Sender
	// SMSProvider sends messages; SMSRate limits it (per second, 0 = none).
	SMSProvider sms.Provider
	SMSRate     float64
	SMSMetrics  *sms.Metrics
	// Pipeline processes form submissions.
	Pipeline *forms.Pipeline
	// EventLog deletes Hasura's old finished events.
	EventLog *eventlog.Cleaner
	// BBB calls BigBlueButton servers; LessonPolicy is how lessons are
	// placed (zero: lesson.DefaultPolicy); Alerts is Prometheus (nil: no
	// alert checks).
	BBB          *bbb.Client
	LessonPolicy lesson.Policy
	Alerts       lesson.AlertSource
	// Blobs is the file store (exam answer files are deleted from it).
	// Blobs is the file store (exam answer files are deleted from it;
	// certificate PDFs are stored in it).
	Blobs *blob.Bucket
	// Now is the exam sweep's clock; nil is time.Now.
	Now func() time.Time
	// Certificate PDFs are rendered by PDF (a warm Chromium); PublicURL is
	// the verify URL printed on them.
	PDF       certificate.Renderer
	PublicURL string
	// Exporter appends responses to Google Sheets (nil: not configured).
	Exporter *export.Exporter
	// Students sweeps transfer documents never attached to a student (nil:
	// no sweep, for tools that build workers without the student store).
	Students *student.Store
}

// Workers registers every worker, each through queue.Add: a kind's timeout
// must fit the rescue rule (queue.MaxTimeout; see internal/queue/rescue.go).
func Workers(d Deps) *river.Workers {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	w := river.NewWorkers()
	queue.Add(w, &ping.PongWorker{Pool: d.Pool})
	queue.Add(w, &queue.SweepWorker[ping.ReconcileArgs]{Pool: d.Pool, MinAge: ping.ReconcileAfter, Sweep: ping.Reconcile})
	queue.Add(w, &inbox.PruneWorker{Pool: d.Pool})
	queue.Add(w, &eventlog.CleanWorker{Cleaner: d.EventLog})
	if d.Analytics != nil {
		queue.Add(w, &analytics.SendWorker{Sender: d.Analytics})
	}

	queue.Add(w, &sms.ExpandWorker{Pool: d.Pool, Metrics: d.SMSMetrics})
	sender := &sms.Sender{Pool: d.Pool, Provider: d.SMSProvider, Limiter: sms.Limiter(d.SMSRate), Metrics: d.SMSMetrics, Log: d.Log}
	queue.Add(w, &sms.SendBatchWorker{Sender: sender})
	queue.Add(w, &sms.SendWorker{Sender: sender})
	queue.Add(w, &sms.ProgressWorker{Pool: d.Pool})
	queue.Add(w, &queue.SweepWorker[sms.ReconcileArgs]{Pool: d.Pool, MinAge: sms.ReconcileAfter, Sweep: sms.Reconcile})
	if p, ok := d.SMSProvider.(sms.Poller); ok {
		queue.Add(w, &sms.ReportWorker{Pool: d.Pool, Poller: p})
	}

	if d.LessonPolicy == (lesson.Policy{}) {
		d.LessonPolicy = lesson.DefaultPolicy()
	}
	queue.Add(w, &lesson.EndMeetingWorker{Pool: d.Pool, BBB: d.BBB})
	queue.Add(w, &lesson.SweepWorker{Pool: d.Pool, BBB: d.BBB, Log: d.Log, Policy: d.LessonPolicy})
	queue.Add(w, &lesson.CheckWorker{Pool: d.Pool, BBB: d.BBB, Log: d.Log})
	queue.Add(w, &lesson.AlertsWorker{Pool: d.Pool, Log: d.Log, Source: d.Alerts})

	queue.Add(w, &forms.ProcessWorker{Pipeline: d.Pipeline})
	queue.Add(w, &forms.CheckWorker{Pipeline: d.Pipeline})
	queue.Add(w, &queue.SweepWorker[forms.ReconcileArgs]{Pool: d.Pool, MinAge: forms.ReconcileAfter, Sweep: forms.Reconcile})
	queue.Add(w, &queue.SweepWorker[assessment.SweepArgs]{Pool: d.Pool, MinAge: assessment.AnnounceAfter, Sweep: assessment.SweepAnnouncements})

	queue.Add(w, &certificate.RenderWorker{Pool: d.Pool, Bucket: d.Blobs, Renderer: d.PDF, PublicURL: d.PublicURL})
	queue.Add(w, &queue.SweepWorker[certificate.ReconcileArgs]{Pool: d.Pool, MinAge: certificate.ReconcileAfter, Sweep: certificate.Reconcile})
	if d.Students != nil {
		queue.Add(w, &student.SweepDocumentsWorker{Store: d.Students, Bucket: d.Blobs})
	}
	// The workers' own exam store: it enqueues through the job's client.
	exams := exam.New(exam.Deps{Pool: d.Pool, Files: exam.NewFiles(d.Blobs), Now: d.Now, Log: d.Log})
	queue.Add(w, &exam.DeleteBlobWorker{Store: exams})
	queue.Add(w, &exam.ExpireWorker{Store: exams})
	// The daily orphan sweep lists the bucket (minutes): a second run after
	// a kill is harmless, a late one costs nothing (see queue.AddLong).
	queue.AddLong(w, &exam.ReapOrphansWorker{Store: exams})

	queue.Add(w, &export.ExportWorker{Exporter: d.Exporter})
	queue.Add(w, &queue.SweepWorker[export.SweepArgs]{Pool: d.Pool, Sweep: export.Sweep})
	return w
}

// SweepEvery is how often River runs each reconciler (the reconcile cron
// trigger adds a run every 5 minutes when Hasura is in front).
const SweepEvery = time.Minute

// Periodic lists the periodic jobs. They run on the elected leader, so N
// replicas run each once.
func Periodic(d Deps) []*river.PeriodicJob {
	every := func(interval time.Duration, args river.JobArgs, runOnStart bool) *river.PeriodicJob {
		return river.NewPeriodicJob(river.PeriodicInterval(interval),
			func() (river.JobArgs, *river.InsertOpts) { return args, nil },
			&river.PeriodicJobOpts{ID: args.Kind(), RunOnStart: runOnStart})
	}
	jobs := []*river.PeriodicJob{
		every(SweepEvery, ping.ReconcileArgs{}, false),
		every(time.Hour, inbox.PruneArgs{}, true),
		every(time.Hour, eventlog.CleanArgs{}, true),
		every(SweepEvery, sms.ReconcileArgs{}, true),
		every(SweepEvery, forms.ReconcileArgs{}, true),
		every(SweepEvery, certificate.ReconcileArgs{}, true),
		every(SweepEvery, assessment.SweepArgs{}, true),
		every(time.Hour, exam.ExpireArgs{}, true),
		every(24*time.Hour, exam.ReapOrphansArgs{}, false),
		every(time.Minute, export.SweepArgs{}, true),
	}
	if d.Analytics != nil {
		jobs = append(jobs, every(time.Minute, analytics.SendArgs{}, true))
	}
	if _, ok := d.SMSProvider.(sms.Poller); ok {
		jobs = append(jobs, every(5*time.Minute, sms.ReportArgs{}, false))
	}
	jobs = append(jobs, every(time.Minute, lesson.SweepArgs{}, true))
	if d.Alerts != nil {
		jobs = append(jobs, every(time.Minute, lesson.AlertsArgs{}, true))
	}
	if d.Students != nil {
		jobs = append(jobs, every(time.Hour, student.SweepDocumentsArgs{}, false))
	}
	return jobs
}

// Queues are the queues beyond River's default and their worker counts.
func Queues(smsWorkers int) map[string]int {
	return map[string]int{sms.Queue: smsWorkers, export.Queue: export.QueueWorkers}
}
