DROP TABLE sheets_quota;
DROP TABLE sheet_export;
