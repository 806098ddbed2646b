-- Run once by the postgres image on an empty data directory (docker-compose.yml):
-- one database per service that keeps its data in PostgreSQL. orders_db is
-- made by POSTGRES_DB.
CREATE DATABASE catalog_db OWNER ecap;
CREATE DATABASE analytics_db OWNER ecap;
