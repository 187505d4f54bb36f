-- Instance-wide roles.

CREATE TYPE user_role AS ENUM ('user', 'moderator', 'admin');

ALTER TABLE users ADD COLUMN role user_role NOT NULL DEFAULT 'user';

-- The admin panel lists staff; nearly everyone is 'user', so index only the rest.
CREATE INDEX users_staff_idx ON users (role) WHERE role <> 'user';
