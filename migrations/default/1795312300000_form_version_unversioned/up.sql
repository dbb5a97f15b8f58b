-- A definition without a version attribute (XLSForm without a version
-- setting, ODK Build) is registered as version '' — as ODK Central stores it
-- (its URLs say ___ for it, and so do shala's OpenRosa form URLs). Its
-- submissions carry no version either and record form_version ''.
ALTER TABLE form_version DROP CONSTRAINT form_version_version_check;
ALTER TABLE form_version ADD CONSTRAINT form_version_version_check CHECK (char_length(version) <= 100);
