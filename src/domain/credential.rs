//! The closed sets that describe a stored upstream credential: what it is and whom it is for.

closed_enum!(
    /// What a credential row holds: the target's token (key "") or one env entry.
    CredentialKind, "kind" {
        Token = "token",
        Env = "env",
    }
);

closed_enum!(
    /// Whom a credential applies to; resolution prefers user > group > role > default per key.
    CredentialScope, "scope" {
        Default = "default",
        Role = "role",
        Group = "group",
        User = "user",
    }
);
