-- Banners, accent colours and channel icons.

ALTER TABLE communities
    ADD COLUMN banner_url TEXT,
    ADD COLUMN accent_color TEXT,
    ADD CONSTRAINT communities_accent_color_format
        CHECK (accent_color IS NULL OR accent_color ~ '^#[0-9A-Fa-f]{6}$');

ALTER TABLE groups
    ADD COLUMN accent_color TEXT,
    ADD CONSTRAINT groups_accent_color_format
        CHECK (accent_color IS NULL OR accent_color ~ '^#[0-9A-Fa-f]{6}$');

ALTER TABLE users
    ADD COLUMN banner_url TEXT,
    ADD COLUMN accent_color TEXT,
    ADD CONSTRAINT users_accent_color_format
        CHECK (accent_color IS NULL OR accent_color ~ '^#[0-9A-Fa-f]{6}$');

ALTER TABLE channels
    ADD COLUMN icon_emoji TEXT,
    ADD CONSTRAINT channels_icon_emoji_length
        CHECK (icon_emoji IS NULL OR char_length(icon_emoji) BETWEEN 1 AND 16);
