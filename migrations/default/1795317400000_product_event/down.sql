DROP TABLE product_event;
