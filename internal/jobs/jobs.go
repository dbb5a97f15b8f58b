// Package jobs lists every River job kind shala works and every periodic
// job, with the dependencies each worker gets — the queue's counterpart of
// routes.go: read this file to know everything shala does in the background.
package jobs

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/ping"
)

// Deps are what workers need.
type Deps struct {
	Pool *pgxpool.Pool
}

// Workers registers every worker.
func Workers(d Deps) *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &ping.PongWorker{Pool: d.Pool})
	river.AddWorker(w, &ping.ReconcileWorker{Pool: d.Pool})
	river.AddWorker(w, &inbox.PruneWorker{Pool: d.Pool})
	return w
}

// Periodic lists the periodic jobs. They run on the elected leader, so N
// replicas run each once.
func Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
			func() (river.JobArgs, *river.InsertOpts) { return ping.ReconcileArgs{}, nil },
			&river.PeriodicJobOpts{ID: "ping.reconcile"}),
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return inbox.PruneArgs{}, nil },
			&river.PeriodicJobOpts{ID: "inbox.prune", RunOnStart: true}),
	}
}
