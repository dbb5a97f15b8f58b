// Package progress serves a school's assessment home page at state scale:
// the assessments open to the school with per-class progress and per-subject
// completion, and its change version (the ETag) so an app that already has
// the listing learns "nothing changed" from one indexed read.
//
// There is no cache to clear. The counters (assessment_progress,
// school_class) are maintained by statement-level triggers in the same
// transaction as every result, TSP, finalisation and enrolment write
// (migrations 1795316000000_assessment_progress; for statements that change
// a student's rows in several ways at once, TRUNCATE and grade points
// 1795316500000_progress_statement_sets and
// 1795316600000_progress_truncate_grades_edits; TRUNCATE of deadlines and
// subjects 1795316700000_progress_truncate_open; class versions after
// counter rows 1795316900000_progress_class_version_last), so they are
// always right and a listing reads a few counter rows, never results. The
// version is the school's (district, session) scope version plus the sum
// of its classes' versions, each bumped in the writing transaction:
// versions only grow, so the sum changes whenever anything the school
// lists changes, whatever order concurrent writers commit in, and two
// teachers of different classes never wait on the same row.
package progress

import (
	"time"

	"github.com/google/uuid"
)

// Listing is a school's assessment home page. When NotModified is true the
// caller already has the listing of version ETag and Assessments is empty.
type Listing struct {
	ETag        string       `json:"etag"`
	NotModified bool         `json:"notModified"`
	Assessments []Assessment `json:"assessments"`
}

// Assessment is one assessment open to the school (enabled, with a
// deadline for the school's district and session, of the current academic
// year when one is marked current) and the school's progress in it.
type Assessment struct {
	ID           uuid.UUID `json:"id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	AcademicYear string    `json:"academicYear"`
	UnitType     string    `json:"unitType"`
	Evaluation   string    `json:"evaluation"`
	Outcome      string    `json:"outcome"`
	TotalMarks   *float64  `json:"totalMarks"`
	PassPercent  *float64  `json:"passPercent"`
	DueAt        time.Time `json:"dueAt"`
	Totals       Totals    `json:"totals"`
	Subjects     []Subject `json:"subjects"`
	Classes      []Class   `json:"classes"`
}

// Counts are the progress counters of a class in a subject (Class), or
// their sum (Totals: then every count is of student-subjects).
type Counts struct {
	// Students with a result (present or absent).
	Students int `json:"students"`
	// Present in at least one component; Absent in all.
	Present int `json:"present"`
	Absent  int `json:"absent"`
	// Scored: marks or a grade entered. Passed: reached the pass
	// percentage (total marks, or average grade points against the top
	// grade's).
	Scored int `json:"scored"`
	Passed int `json:"passed"`
	// Class-level TSP submissions: rows (learning outcomes, units or
	// questions) and the sums of students present and cleared.
	TSPUnits   int `json:"tspUnits"`
	TSPPresent int `json:"tspPresent"`
	TSPCleared int `json:"tspCleared"`
}

func (c *Counts) add(o Counts) {
	c.Students += o.Students
	c.Present += o.Present
	c.Absent += o.Absent
	c.Scored += o.Scored
	c.Passed += o.Passed
	c.TSPUnits += o.TSPUnits
	c.TSPPresent += o.TSPPresent
	c.TSPCleared += o.TSPCleared
}

// Totals are the school's totals in an assessment: its listed classes,
// how many are final, their enrolment, and the counts summed over classes
// and subjects.
type Totals struct {
	Classes      int `json:"classes"`
	FinalClasses int `json:"finalClasses"`
	Enrolled     int `json:"enrolled"`
	Counts
}

// Subject is a subject's completion across the school's classes:
// Students with a result out of Enrolled in the classes whose grade the
// assessment asks the subject of.
type Subject struct {
	Subject  string `json:"subject"`
	Enrolled int    `json:"enrolled"`
	Students int    `json:"students"`
}

// Class is one of the school's classes in an assessment: a class of a
// grade the assessment covers that has students, or that has progress or
// was finalised.
type Class struct {
	Grade    int       `json:"grade"`
	Section  string    `json:"section"`
	Enrolled int       `json:"enrolled"`
	Final    bool      `json:"final"`
	Subjects []Counted `json:"subjects"`
}

// Counted is a class's progress in one subject. TSPUnitsExpected is how
// many units (learning objectives, units or questions: assessment_unit) the
// class counts in the subject — "TSPUnits of TSPUnitsExpected" — 1 for a
// NONE assessment, nil when the state has defined none for the class and
// subject (then any unit name is taken). TSPUnits counts every count
// written, so it can exceed it when units were withdrawn after counting.
type Counted struct {
	Subject string `json:"subject"`
	Counts
	TSPUnitsExpected *int `json:"tspUnitsExpected"`
}
