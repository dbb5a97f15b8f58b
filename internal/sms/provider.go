// Package sms sends SMS to parents, respondents and collectors: requests
// are expanded into one message per phone (students resolved, numbers
// normalised and de-duplicated, Hindi templates rendered with their DLT
// template ids), each message is sent by its own job through a Provider with
// a rate limit, and the request's progress follows its messages. One
// recipient's failure never stops the others.
package sms

import (
	"context"
	"errors"
	"fmt"
)

// Message is one SMS to send.
type Message struct {
	To            string // E.164
	Body          string
	DLTTemplateID string
}

// Provider sends SMS through one gateway.
type Provider interface {
	// Name identifies the provider in rows and metrics ("cdac", "twilio", "log").
	Name() string
	// Send hands msg to the gateway and returns the gateway's message id.
	// Errors are *Error when the gateway answered; anything else (network,
	// timeout) is transient.
	Send(ctx context.Context, msg Message) (providerMessageID string, err error)
}

// Error is a gateway's refusal.
type Error struct {
	Code      string // the gateway's code, for metrics (bounded set)
	Message   string // the gateway's reason, recorded on the message
	Permanent bool   // retrying the same message will not help
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Permanent reports whether err is a refusal that retrying will not change.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// ErrorCode is the gateway code of err for metrics: the *Error's code,
// "timeout" or "network" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "network"
}

// Status is a delivery status reported by a gateway.
type Status struct {
	ProviderMessageID string
	Delivered         bool   // reached the handset
	Failed            bool   // will not be delivered
	Reason            string // gateway's reason when failed
}

// CallbackProvider is a provider that reports delivery by calling shala back
// (Twilio). Its reports can arrive before shala has recorded the send they
// are about; the sender then applies the waiting report when it records.
type CallbackProvider interface {
	Provider
	ReportsByCallback()
}
