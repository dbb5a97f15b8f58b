-- A provider's delivery report can arrive before shala has recorded the
-- send it is about (Twilio may call back within milliseconds of accepting a
-- message). Such a report waits here and is applied when the send is
-- recorded; reports and recording serialise on an advisory lock per
-- (provider, provider message id).
CREATE TABLE sms_report_early (
  provider            text NOT NULL,
  provider_message_id text NOT NULL CHECK (char_length(provider_message_id) <= 200),
  outcome             text NOT NULL CHECK (outcome IN ('delivered', 'failed')),
  reason              text,
  received_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, provider_message_id)
);
COMMENT ON TABLE sms_report_early IS 'Delivery reports that arrived before their send was recorded; applied and deleted when it is';
