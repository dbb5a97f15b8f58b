package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shala-edu/shala/actions"
	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/openrosa"
	"github.com/shala-edu/shala/internal/ratelimit"
	"github.com/shala-edu/shala/internal/slowread"
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
		r.MethodNotAllowed(odk.MethodNotAllowed)
		submission := openrosa.Submission(odk)
		r.Method(http.MethodHead, "/submission", submission)
		r.With(slowread.Middleware(d.Upload)).Method(http.MethodPost, "/submission", submission)
		r.Method(http.MethodGet, "/formList", openrosa.FormList(odk, d.PublicURL))
		r.Method(http.MethodGet, "/forms/{form}/{file}", openrosa.FormDownload(odk))
	})

	// Students and leaving certificates, outside Hasura: what a phone camera
	// opens from the QR code, the published signing keys, the PDFs, and
	// schools' transfer-document uploads. Rate limited per IP.
	r.Group(func(r chi.Router) {
		r.Use(ratelimit.New(d.PublicRate, d.PublicBurst).Middleware)
		r.Method(http.MethodGet, "/verify/{id}", web.VerifyByID(d.Log, d.Certificates))
		r.Method(http.MethodGet, "/verify", web.VerifyPayload(d.Log, d.Certificates))
		r.Method(http.MethodGet, web.KeysPath, web.Keys(d.Log, d.certificateSigner()))
		r.Method(http.MethodGet, "/certificates/{id}/pdf", web.CertificatePDF(d.Log, d.Certificates, d.Blobs))
		// Transfer documents (OTHER_STATE admissions), with the app's JWT;
		// read at any speed above the upload floor, like exam files.
		r.With(slowread.Middleware(d.Upload)).Method(http.MethodPost, web.DocumentsPath, web.StudentDocuments(d.Log, d.JWT, d.Students, d.Documents))
	})
	// Students hand in exam answer files by upload code (plain multipart,
	// or tus for resumable uploads); anyone holding a verification code
	// gets a signed link. Wrong codes are counted per client (guesses).
	if exams := d.Exams; exams != nil && d.Blobs != nil {
		guesses := web.NewGuesses()
		links := web.NewLinks(d.Blobs, web.LinkKey(d.WebhookSecret), d.PublicURL, exams.Now)
		public := ratelimit.New(d.PublicRate, d.PublicBurst).Middleware
		r.Route("/submissions/{uploadCode}", func(r chi.Router) {
			// A student's phone may be slow: read at any speed above the
			// floor (tus has its own per-read deadline and resumes).
			r.With(public, slowread.Middleware(d.Upload)).Method(http.MethodPost, "/", web.Submit(d.Log, exams, guesses))
			r.With(public).Method(http.MethodGet, "/", web.SubmissionStatus(d.Log, exams, guesses))
			if d.TusDir != "" {
				r.With(httperr.Use(web.TusWriteError), public).Handle("/tus/*", web.NewTus(d.Log, exams, guesses, d.TusDir, d.PublicURL))
			}
		})
		r.With(public).Method(http.MethodGet, "/verifications/{code}", web.Verification(d.Log, exams, links, guesses))
		r.With(public).Handle("/files/{uploadID}/{name}", web.Files(d.Log, exams, links))
	}

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

	// The teacher app's REST listing, authorised by its Hasura JWT.
	r.With(ratelimit.New(d.PublicRate, d.PublicBurst).Middleware).
		Method(http.MethodGet, web.SchoolAssessmentsPath, web.SchoolAssessments(d.Log, d.JWT, d.Listings))

	// Responses as CSV: a Hasura JWT (admin, state_admin) or a signed link
	// from exportLink; per-IP limited, at most 4 streaming at once.
	r.With(ratelimit.New(d.PublicRate, d.PublicBurst).Middleware).Method(http.MethodGet, "/exports/{file}",
		web.ExportCSV(web.ExportDeps{Log: d.Log, Pool: d.Pool, Langs: d.Langs, Verifier: d.JWT, Links: d.Links, Slots: make(chan struct{}, 4)}))

	// Providers' callbacks: public, authenticated by the provider's signature.
	r.Method(http.MethodPost, twilio.CallbackPath, twilio.StatusCallback(d.Log, d.SMSReports, d.TwilioAuthToken, d.TwilioCallbackURL))

	// Online lessons: students' personal links and moderators' quick links
	// (tokens in the path: rate limited per IP, wrong tokens limited
	// further), and BBB nodes' heartbeats (signed with the node's secret).
	tokens := web.NewGuesses()
	// The pages answer their refusals as pages (the rate limits' too);
	// the waiting page's status poll as JSON.
	page := httperr.Use(web.LessonPageError(d.Log))
	r.Route("/j/{token}", func(r chi.Router) {
		limit := ratelimit.New(d.PublicRate, d.PublicBurst).Middleware
		r.With(page, limit).Method(http.MethodGet, "/", web.Join(d.Log, d.Lessons, tokens))
		r.With(limit).Method(http.MethodGet, "/status", web.JoinStatus(d.Log, d.Lessons, tokens))
	})
	r.Route("/m/{token}", func(r chi.Router) {
		r.Use(page, ratelimit.New(d.PublicRate, d.PublicBurst).Middleware)
		link := web.ModeratorLink(d.Log, d.LessonGroups, d.ModeratorMinter, d.ModeratorAppURL, d.ModeratorTokenTTL, tokens)
		r.Method(http.MethodGet, "/", link)
		r.Method(http.MethodPost, "/", link)
	})
	r.With(ratelimit.New(d.PublicRate, d.PublicBurst).Middleware).
		Method(http.MethodPost, web.HeartbeatPath, web.Heartbeat(d.Log, d.BBBServers))

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
		small.Method(http.MethodPost, "/saveFormReceipt", actions.SaveFormReceipt(d.Log, d.Catalog, d.Rules))
		small.Method(http.MethodPost, "/saveBuilderMapping", actions.SaveBuilderMapping(d.Log, d.Catalog))
		small.Method(http.MethodPost, "/setFormState", actions.SetFormState(d.Log, d.Catalog))
		r.With(capBody(hasura.ActionBodyLimit(forms.MaxSubmissionBytes))).
			Method(http.MethodPost, "/submitForm", actions.SubmitForm(d.Log, d.Pipeline))
		small.Method(http.MethodPost, "/createCollector", actions.CreateCollector(d.Log, d.Collectors, d.PublicURL))
		small.Method(http.MethodPost, "/revokeCollector", actions.RevokeCollector(d.Log, d.Collectors))
		small.Method(http.MethodPost, "/schoolAssessments", actions.SchoolAssessments(d.Log, d.Listings))
		small.Method(http.MethodPost, "/addBBBServer", actions.AddBBBServer(d.Log, d.BBBServers))
		small.Method(http.MethodPost, "/disableBBBServer", actions.DisableBBBServer(d.Log, d.BBBServers))
		small.Method(http.MethodPost, "/createGroup", actions.CreateGroup(d.Log, d.LessonGroups))
		small.Method(http.MethodPost, "/addStudents", actions.AddStudents(d.Log, d.LessonGroups))
		small.Method(http.MethodPost, "/removeStudent", actions.RemoveStudent(d.Log, d.LessonGroups))
		small.Method(http.MethodPost, "/resetAccessToken", actions.ResetAccessToken(d.Log, d.LessonGroups))
		small.Method(http.MethodPost, "/createModeratorLink", actions.CreateModeratorLink(d.Log, d.LessonGroups, d.PublicURL))
		small.Method(http.MethodPost, "/resetModeratorLink", actions.ResetModeratorLink(d.Log, d.LessonGroups, d.PublicURL))
		small.Method(http.MethodPost, "/startLesson", actions.StartLesson(d.Log, d.Lessons))
		small.Method(http.MethodPost, "/endLesson", actions.EndLesson(d.Log, d.Lessons))
		small.Method(http.MethodPost, "/registerStudent", actions.RegisterStudent(d.Log, d.Students))
		small.Method(http.MethodPost, "/promoteStudents", actions.PromoteStudents(d.Log, d.Students))
		small.Method(http.MethodPost, "/issueLeavingCertificate", actions.IssueLeavingCertificate(d.Log, d.Certificates, d.PublicURL))
		small.Method(http.MethodPost, "/revokeCertificate", actions.RevokeCertificate(d.Log, d.Certificates))
		small.Method(http.MethodPost, "/verifyCertificate", actions.VerifyCertificate(d.Log, d.Certificates))
		small.Method(http.MethodPost, "/admitTransferredStudent", actions.AdmitTransferredStudent(d.Log, d.Certificates))
		small.Method(http.MethodPost, "/studentAadhaar", actions.StudentAadhaar(d.Log, d.Students))
		small.Method(http.MethodPost, "/createExam", actions.CreateExam(d.Log, d.Exams))
		small.Method(http.MethodPost, "/createExamStudents", actions.CreateExamStudents(d.Log, d.Exams))
		small.Method(http.MethodPost, "/resetUploadCode", actions.ResetUploadCode(d.Log, d.Exams))
		small.Method(http.MethodPost, "/purgeExam", actions.PurgeExam(d.Log, d.Exams))
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
		r.Method(http.MethodPost, "/bbb_alerts", triggers.BBBAlerts(d.Log, d.Inbox))
		r.Method(http.MethodPost, "/expire_exam_uploads", triggers.ExpireExamUploads(d.Log, d.Inbox))
	})
}

// certificateSigner is the signer whose keys are published (none when
// certificates are not wired, as in some tests: the key set is then empty).
func (d Deps) certificateSigner() certificate.Signer {
	if d.Certificates == nil {
		return noKeys{}
	}
	return d.Certificates.Signer()
}

type noKeys struct{}

func (noKeys) SigningKey(context.Context) (certificate.Key, error) {
	return certificate.Key{}, errNoSigner
}
func (noKeys) Sign(context.Context, certificate.Key, []byte) ([]byte, error) {
	return nil, errNoSigner
}
func (noKeys) Keys(context.Context) ([]certificate.Key, error) { return nil, nil }

var errNoSigner = errors.New("no certificate signer configured")
