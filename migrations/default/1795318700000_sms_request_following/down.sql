DROP INDEX sms_request_following;
