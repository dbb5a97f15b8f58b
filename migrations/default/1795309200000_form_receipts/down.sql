DROP TABLE IF EXISTS form_receipt;
