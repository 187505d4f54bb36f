-- Thumbnails are made by the uploading client (the server never sees the image)
-- and stored encrypted next to the original.

ALTER TABLE files
    ADD COLUMN thumbnail_path TEXT UNIQUE,
    ADD COLUMN width INTEGER,
    ADD COLUMN height INTEGER,
    ADD CONSTRAINT files_dimensions
        CHECK ((width IS NULL) = (height IS NULL) AND (width IS NULL OR (width > 0 AND height > 0)));
