package triggers

import (
	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/inbox"
)

// forEvent is the inbox record of an event-trigger delivery.
func forEvent[Row any](e *hasura.Event[Row]) inbox.Delivery {
	return inbox.Delivery{ID: e.ID, Kind: "event", Name: e.Trigger, Op: string(e.Op), TraceID: e.TraceID()}
}

// forCron is the inbox record of a cron or scheduled-event delivery.
func forCron(c *hasura.CronEvent, name string) inbox.Delivery {
	return inbox.Delivery{ID: c.ID, Kind: "cron", Name: name}
}
