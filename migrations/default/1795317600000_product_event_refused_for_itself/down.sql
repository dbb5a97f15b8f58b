ALTER TABLE product_event DROP COLUMN IF EXISTS refused_for_itself;
