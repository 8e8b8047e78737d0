-- Login sessions (JWTs) of a user carry this number; a password or role change, or a logout,
-- increments it, and every earlier login token of that user stops working at once.
ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
