ALTER TABLE form_version DROP CONSTRAINT form_version_version_check;
ALTER TABLE form_version ADD CONSTRAINT form_version_version_check CHECK (char_length(version) BETWEEN 1 AND 100);
