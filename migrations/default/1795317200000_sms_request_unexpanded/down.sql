DROP INDEX sms_request_unexpanded;
