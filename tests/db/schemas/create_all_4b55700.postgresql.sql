-- The tables as `create_all` made them at commit 4b55700, before migrations (postgresql).
-- Frozen: tests/db/test_migrations.py checks that revision 0001 equals it and that a
-- database made from it is stamped and upgraded. Never regenerate it from today's models.

CREATE TABLE dataset_info (
	id INTEGER NOT NULL, 
	sha256 VARCHAR NOT NULL, 
	files JSON NOT NULL, 
	source VARCHAR NOT NULL, 
	loaded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	movies INTEGER NOT NULL, 
	users INTEGER NOT NULL, 
	ratings INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT ck_dataset_info_single_row CHECK (id = 1)
);

CREATE TABLE movies (
	id INTEGER NOT NULL, 
	title VARCHAR NOT NULL, 
	title_folded VARCHAR NOT NULL, 
	year INTEGER, 
	genres VARCHAR NOT NULL, 
	overview VARCHAR NOT NULL, 
	tmdb_id INTEGER, 
	imdb_id VARCHAR, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_movies_title_folded ON movies (title_folded);

CREATE TABLE users (
	id INTEGER NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE api_tokens (
	id SERIAL NOT NULL, 
	user_id INTEGER NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	revoked_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id), 
	UNIQUE (token_sha256)
);

CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE ratings (
	user_id INTEGER NOT NULL, 
	movie_id INTEGER NOT NULL, 
	rating FLOAT NOT NULL, 
	rated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (user_id, movie_id), 
	CONSTRAINT ck_ratings_rating_range CHECK (rating >= 0.5 AND rating <= 5.0), 
	FOREIGN KEY(user_id) REFERENCES users (id), 
	FOREIGN KEY(movie_id) REFERENCES movies (id)
);

CREATE INDEX ix_ratings_movie_id ON ratings (movie_id);
