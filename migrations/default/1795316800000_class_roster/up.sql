-- A class's roster as its enrolment counts it: a student recorded without
-- a section is in class A (school_class, assessment results). school_class's
-- roster relationship matched student.section itself, so in the one-section
-- schools that record no section the roster of class A was empty while the
-- listing said the class had students: the teacher entering the class's
-- results could not see them.
CREATE VIEW class_roster AS
SELECT s.id, s.school_id, s.grade, coalesce(s.section, 'A') AS section, s.name, s.gender, s.admission_number, s.status, s.enabled
FROM student s;
COMMENT ON VIEW class_roster IS 'Students by the class their enrolment counts in (no section is A); the roster of school_class';
