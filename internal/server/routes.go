package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shala-edu/shala/actions"
	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/openrosa"
	"github.com/shala-edu/shala/internal/ratelimit"
	"github.com/shala-edu/shala/internal/sms/twilio"
	"github.com/shala-edu/shala/internal/web"
	"github.com/shala-edu/shala/triggers"
)

// addRoutes is shala's whole HTTP surface. Hasura reaches /actions, /events
// and /cron with the webhook secret; operators and probes reach the rest.
// Each handler gets exactly the dependencies it uses.
func addRoutes(r chi.Router, d Deps) {
	r.Get("/healthz", healthz())
	r.Get("/readyz", readyz(d.Log, d.Ready))
	r.Handle("/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{d.Log}, ErrorHandling: promhttp.ContinueOnError}))

	// ODK Collect and Enketo submit here; the collector token in the path
	// authenticates them.
	r.Route("/openrosa/key/{token}", func(r chi.Router) {
		odk := openrosa.Deps{Log: d.Log, Catalog: d.Catalog, Pipeline: d.Pipeline, Collectors: d.Collectors,
			Attachments: d.Attachments, Bucket: d.Blobs, MaxBytes: d.OpenRosaMaxBytes}
		r.Use(httperr.Use(odk.WriteError), ratelimit.New(d.PublicRate, d.PublicBurst).Middleware)
		submission := openrosa.Submission(odk)
		r.Method(http.MethodHead, "/submission", submission)
		r.Method(http.MethodPost, "/submission", submission)
		r.Method(http.MethodGet, "/formList", openrosa.FormList(odk, d.PublicURL))
		r.Method(http.MethodGet, "/forms/{form}/{file}", openrosa.FormDownload(odk))
	})

	// Operators: River's UI, to see failed jobs and retry them. Basic auth
	// (rate-limited per IP against guessing) and, since browsers resend basic
	// credentials on their own, cross-origin writes refused.
	if d.Operator != nil && d.OperatorPassword != "" {
		r.Route(OperatorPath, func(r chi.Router) {
			r.Use(ratelimit.New(d.PublicRate, d.PublicBurst).Middleware, operatorAuth(d.Log, d.OperatorPassword),
				http.NewCrossOriginProtection().Handler)
			r.Handle("/*", d.Operator)
		})
	}

	// Responses as CSV: a Hasura JWT (admin, state_admin) or a signed link
	// from exportLink; per-IP limited, at most 4 streaming at once.
	r.With(ratelimit.New(d.PublicRate, d.PublicBurst).Middleware).Method(http.MethodGet, "/exports/{file}",
		web.ExportCSV(web.ExportDeps{Log: d.Log, Pool: d.Pool, Langs: d.Langs, Verifier: d.JWT, Links: d.Links, Slots: make(chan struct{}, 4)}))

	// Providers' callbacks: public, authenticated by the provider's signature.
	r.Method(http.MethodPost, twilio.CallbackPath, twilio.StatusCallback(d.Log, d.SMSReports, d.TwilioAuthToken, d.TwilioCallbackURL))

	r.Route("/actions", func(r chi.Router) {
		r.Use(d.webhook("action")...)
		r.NotFound(notFound("action"))
		// Each action's body limit fits its largest argument as the
		// database stores it; the others take SHALA_MAX_BODY_BYTES.
		small := r.With(capBody(d.MaxBodyBytes))
		small.Method(http.MethodPost, "/ping", actions.Ping(d.Log, d.Pings))
		r.With(capBody(hasura.ActionBodyLimit(forms.MaxDefinitionBytes))).
			Method(http.MethodPost, "/registerForm", actions.RegisterForm(d.Log, d.Catalog))
		small.Method(http.MethodPost, "/saveFormRule", actions.SaveFormRule(d.Log, d.Catalog, d.Rules))
		r.With(capBody(hasura.ActionBodyLimit(forms.MaxSubmissionBytes))).
			Method(http.MethodPost, "/submitForm", actions.SubmitForm(d.Log, d.Pipeline))
		small.Method(http.MethodPost, "/createCollector", actions.CreateCollector(d.Log, d.Collectors, d.PublicURL))
		small.Method(http.MethodPost, "/revokeCollector", actions.RevokeCollector(d.Log, d.Collectors))
		small.Method(http.MethodPost, "/connectSheet", actions.ConnectSheet(d.Log, d.Pool, d.Queue, d.SheetsAccount))
		small.Method(http.MethodPost, "/exportLink", actions.ExportLink(d.Log, d.Pool, d.Links))
	})
	r.Route("/events", func(r chi.Router) {
		r.Use(d.webhook("event")...)
		r.Use(capBody(d.MaxBodyBytes))
		r.NotFound(notFound("event trigger"))
		r.Method(http.MethodPost, "/ping_created", triggers.PingCreated(d.Log, d.Inbox))
		r.Method(http.MethodPost, "/sms_request_created", triggers.SMSRequestCreated(d.Log, d.Inbox))
		r.Method(http.MethodPost, "/form_submission_created", triggers.FormSubmissionCreated(d.Log, d.Inbox))
		r.Method(http.MethodPost, "/assessment_class_finalized", triggers.AssessmentClassFinalized(d.Log, d.Inbox))
	})
	r.Route("/cron", func(r chi.Router) {
		r.Use(d.webhook("cron")...)
		r.Use(capBody(d.MaxBodyBytes))
		r.NotFound(notFound("cron trigger"))
		r.Method(http.MethodPost, "/reconcile", triggers.Reconcile(d.Log, d.Inbox))
	})
}
