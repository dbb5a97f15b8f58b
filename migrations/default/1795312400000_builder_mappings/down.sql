DROP TABLE IF EXISTS builder_mapping;
ALTER TABLE form_version DROP COLUMN IF EXISTS builder_layout, DROP COLUMN IF EXISTS builder_mapping;
ALTER TABLE sms_template DROP COLUMN IF EXISTS external_id;
DROP TABLE IF EXISTS subject_code;
ALTER TABLE assessment_component DROP CONSTRAINT IF EXISTS assessment_component_component_type_fkey;
ALTER TABLE assessment_component ADD CONSTRAINT assessment_component_component_type_check
  CHECK (component_type IN ('THEORY', 'PRACTICAL', 'ORAL', 'PROJECT'));
DROP TABLE IF EXISTS component_type;
ALTER TABLE assessment DROP CONSTRAINT IF EXISTS assessment_type_fkey, DROP COLUMN IF EXISTS category;
ALTER TABLE assessment ADD CONSTRAINT assessment_type_check
  CHECK (type IN ('FA1', 'FA2', 'FA3', 'FA4', 'SA1', 'SA2', 'TERM1', 'TERM2', 'BASELINE', 'ENDLINE'));
DROP TABLE IF EXISTS assessment_type;
DROP TABLE IF EXISTS assessment_category;
DROP TABLE IF EXISTS district;
