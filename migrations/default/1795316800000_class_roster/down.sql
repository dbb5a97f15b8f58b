DROP VIEW IF EXISTS class_roster;
