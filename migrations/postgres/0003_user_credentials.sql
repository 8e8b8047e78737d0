-- What a non-admin user may supply for a target at their own user scope: the env keys listed
-- here and, when user_token is set, a token. Existing targets allow nothing until an admin says
-- so; rows users wrote before stay and are reported by `reflow secret audit`.
ALTER TABLE targets ADD COLUMN user_env JSONB NOT NULL DEFAULT '[]';
ALTER TABLE targets ADD COLUMN user_token BOOLEAN NOT NULL DEFAULT FALSE;
