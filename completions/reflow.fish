# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_reflow_global_optspecs
    string join \n c/config= data-dir= database-url= json h/help V/version
end

function __fish_reflow_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_reflow_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_reflow_using_subcommand
    set -l cmd (__fish_reflow_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c reflow -n "__fish_reflow_needs_command" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_needs_command" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_needs_command" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_needs_command" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_needs_command" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_needs_command" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "serve" -d 'Run the gateway: MCP endpoint, admin API and health checks on one port'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "user" -d 'Manage user accounts'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "target" -d 'Manage targets: the upstream MCP servers behind the gateway'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "policy" -d 'Manage access policies: who may use which tools, resources and prompts'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "token" -d 'Manage API tokens for MCP clients'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "secret" -d 'Manage upstream credentials: target tokens and env entries, and key rotation'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "logs" -d 'Show the audit log: who called what, and the policy decision'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "db" -d 'Database migrations'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "config" -d 'Inspect the configuration'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "bridge" -d 'Serve one stdio MCP server over Streamable HTTP (one process per session)'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "probe" -d 'Connect to one HTTP MCP upstream, list what it serves, optionally call a tool'
complete -c reflow -n "__fish_reflow_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand serve" -l host -d 'Address to bind (default 127.0.0.1; use 0.0.0.0 to accept remote clients)' -r
complete -c reflow -n "__fish_reflow_using_subcommand serve" -s p -l port -d 'Port to bind (default 8080; 0 picks a free one)' -r
complete -c reflow -n "__fish_reflow_using_subcommand serve" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand serve" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand serve" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand serve" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand serve" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand serve" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "add" -d 'Create an account. The password is prompted for, or read from stdin with --password-stdin'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "list" -d 'List accounts'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "show" -d 'Show one account (by email or id) and its API tokens'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "set-role" -d 'Change an account\'s role'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "set-groups" -d 'Replace an account\'s groups (none given: no groups)'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "passwd" -d 'Set a new password (prompted, or --password-stdin)'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "remove" -d 'Delete an account and its API tokens'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "recycle" -d 'End an account\'s MCP sessions (by email or id); its clients initialize again'
complete -c reflow -n "__fish_reflow_using_subcommand user; and not __fish_seen_subcommand_from add list show set-role set-groups passwd remove recycle help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -l role -d 'Role: admin, user, or any role your policies name' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -l group -d 'Group membership; repeat or separate with commas' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password from the first line of stdin (for scripts)'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from show" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from show" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-role" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-role" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-role" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-role" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-role" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-role" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-groups" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-groups" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-groups" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-groups" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-groups" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from set-groups" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from remove" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from remove" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from remove" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from remove" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from recycle" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from recycle" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from recycle" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from recycle" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from recycle" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from recycle" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create an account. The password is prompted for, or read from stdin with --password-stdin'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List accounts'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one account (by email or id) and its API tokens'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "set-role" -d 'Change an account\'s role'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "set-groups" -d 'Replace an account\'s groups (none given: no groups)'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Set a new password (prompted, or --password-stdin)'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete an account and its API tokens'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "recycle" -d 'End an account\'s MCP sessions (by email or id); its clients initialize again'
complete -c reflow -n "__fish_reflow_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "add" -d 'Add a target: `--url URL` for HTTP, or `--stdio -- COMMAND ARGS...` for a local process'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "list" -d 'List targets'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "show" -d 'Show one target (by name or id)'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "update" -d 'Change the given settings of a target; others stay as they are'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "remove" -d 'Delete a target with its policies and stored credentials'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "enable" -d 'Route traffic to a target again'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "disable" -d 'Stop routing to a target without deleting it'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "test" -d 'Connect to a target (with the default scope\'s credentials) and report its era, protocol version, server and what it offers'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "instances" -d 'List a stdio target\'s processes (every replica\'s, as recorded), live ones first'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "restart" -d 'Stop a stdio or kubernetes target\'s processes or pods on every replica; for an HTTP target, drop every replica\'s upstream sessions and connections to it. The next use starts them again'
complete -c reflow -n "__fish_reflow_using_subcommand target; and not __fish_seen_subcommand_from add list show update remove enable disable test instances restart help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l url -d 'Upstream MCP endpoint (http or https)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l transport -d 'streamable-http, sse, stdio or kubernetes' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l prefix -d 'Tool name prefix (\'\' = unprefixed; default: the target name)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l timeout -d 'Per-request timeout, e.g. 30s or 2m (1 s to 1 h)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l statefulness -d 'stateless or stateful' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l isolation -d 'Who shares a stdio process or pod: shared, per_role, per_group or per_user' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l auth-type -d 'none, bearer or header' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l auth-header-name -d 'The header carrying the token when --auth-type header' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l cwd -d 'Working directory of a stdio process' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l image -d 'Container image of a kubernetes target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l port -d 'Container port of a kubernetes target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l health-path -d 'Readiness path of a kubernetes target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l tag -d 'A tag; repeat for several. On update, replaces all tags' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l env -d 'Non-secret environment entry KEY=VALUE; repeat for several. On update, replaces all' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l user-env -d 'An env key users may set for themselves (`reflow secret set --user`, or their own user scope in the API); repeat for several. On update, replaces all. Admins may set any key; the deny-list (LD_*, NODE_OPTIONS, PATH, ...) binds everyone' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l user-token -d 'Whether users may set their own token for this target (true or false)' -r -f -a "true\t''
false\t''"
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l request -d 'A kubernetes target\'s pod resource request NAME=QUANTITY (cpu, memory, ephemeral-storage); repeat for several. On update, --request and --limit replace both' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l limit -d 'A kubernetes target\'s pod resource limit NAME=QUANTITY; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l no-user-env -d 'Clear the env keys users may set'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l stdio -d 'A local process speaking MCP on stdin/stdout; give the command after `--`'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l disabled -d 'Create the target disabled'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from show" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from show" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l name -d 'Rename the target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l url -d 'Upstream MCP endpoint (http or https)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l transport -d 'streamable-http, sse, stdio or kubernetes' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l prefix -d 'Tool name prefix (\'\' = unprefixed; default: the target name)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l timeout -d 'Per-request timeout, e.g. 30s or 2m (1 s to 1 h)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l statefulness -d 'stateless or stateful' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l isolation -d 'Who shares a stdio process or pod: shared, per_role, per_group or per_user' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l auth-type -d 'none, bearer or header' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l auth-header-name -d 'The header carrying the token when --auth-type header' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l cwd -d 'Working directory of a stdio process' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l image -d 'Container image of a kubernetes target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l port -d 'Container port of a kubernetes target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l health-path -d 'Readiness path of a kubernetes target' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l tag -d 'A tag; repeat for several. On update, replaces all tags' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l env -d 'Non-secret environment entry KEY=VALUE; repeat for several. On update, replaces all' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l user-env -d 'An env key users may set for themselves (`reflow secret set --user`, or their own user scope in the API); repeat for several. On update, replaces all. Admins may set any key; the deny-list (LD_*, NODE_OPTIONS, PATH, ...) binds everyone' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l user-token -d 'Whether users may set their own token for this target (true or false)' -r -f -a "true\t''
false\t''"
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l request -d 'A kubernetes target\'s pod resource request NAME=QUANTITY (cpu, memory, ephemeral-storage); repeat for several. On update, --request and --limit replace both' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l limit -d 'A kubernetes target\'s pod resource limit NAME=QUANTITY; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l no-user-env -d 'Clear the env keys users may set'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l clear-prefix -d 'Reset the prefix to the target name'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from remove" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from remove" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from remove" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from remove" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from enable" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from enable" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from enable" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from enable" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from disable" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from disable" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from disable" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from disable" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from test" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from test" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from test" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from test" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from instances" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from instances" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from instances" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from instances" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from instances" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from instances" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from restart" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from restart" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from restart" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from restart" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from restart" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from restart" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a target: `--url URL` for HTTP, or `--stdio -- COMMAND ARGS...` for a local process'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "list" -d 'List targets'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one target (by name or id)'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change the given settings of a target; others stay as they are'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete a target with its policies and stored credentials'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Route traffic to a target again'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Stop routing to a target without deleting it'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "test" -d 'Connect to a target (with the default scope\'s credentials) and report its era, protocol version, server and what it offers'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "instances" -d 'List a stdio target\'s processes (every replica\'s, as recorded), live ones first'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "restart" -d 'Stop a stdio or kubernetes target\'s processes or pods on every replica; for an HTTP target, drop every replica\'s upstream sessions and connections to it. The next use starts them again'
complete -c reflow -n "__fish_reflow_using_subcommand target; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "add" -d 'Add a policy: `--effect allow|deny`, who it is about, and what it covers'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "list" -d 'List policies in evaluation order (priority desc, then name)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "show" -d 'Show one policy (by name or id)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "update" -d 'Change the given settings of a policy; subject flags replace all subjects'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "remove" -d 'Delete a policy'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "enable" -d 'Make a policy take part in decisions again'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "disable" -d 'Keep a policy but ignore it in decisions'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "test" -d 'Explain what the policies decide for a user: one item, or (without an item) whether the target is visible at all'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "explain" -d 'Effective access of a user (or a role and groups): every target and item, the policy that decided it and the credential tier that would be injected'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "export" -d 'Print every policy as YAML (targets by name, users by email), for `apply`'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "apply" -d 'Make the policies match a file written like `export`\'s output (keyed by name)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and not __fish_seen_subcommand_from add list show update remove enable disable test explain export apply help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l effect -d 'allow or deny' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l role -d 'A role this policy is about; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l group -d 'A group this policy is about; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l user -d 'A user (email or id) this policy is about; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l target -d 'Limit the policy to one target (name or id); default: every target' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l type -d 'tool, resource, prompt or all' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l pattern -d 'A regular expression the whole item name (or URI) must match' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l priority -d 'Higher is tried first (-10000 to 10000)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l description -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l everyone -d 'The policy is about every authenticated user'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l disabled -d 'Create the policy disabled'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from show" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from show" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l name -d 'Rename the policy' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l effect -d 'allow or deny' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l role -d 'A role this policy is about; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l group -d 'A group this policy is about; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l user -d 'A user (email or id) this policy is about; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l target -d 'Limit the policy to one target (name or id); default: every target' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l type -d 'tool, resource, prompt or all' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l pattern -d 'A regular expression the whole item name (or URI) must match' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l priority -d 'Higher is tried first (-10000 to 10000)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l description -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l everyone -d 'The policy is about every authenticated user'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l all-targets -d 'Make the policy apply to every target'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l clear-pattern -d 'Remove the pattern: every name matches'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from remove" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from remove" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from remove" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from remove" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from enable" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from enable" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from enable" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from enable" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from disable" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from disable" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from disable" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from disable" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l user -d 'The user (email or id)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l target -d 'The target (name or id)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l tool -d 'A tool name (original, unprefixed)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l resource -d 'A resource URI' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l prompt -d 'A prompt name' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -l user -d 'The user (email or id)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -l role -d 'Or a role (for anyone with it) …' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -l group -d '… and groups; repeat for several' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from explain" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from export" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from export" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from export" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from export" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -s f -l file -d 'The YAML file' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -l prune -d 'Also remove policies the file does not name'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -l dry-run -d 'Print what would change without changing anything'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from apply" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a policy: `--effect allow|deny`, who it is about, and what it covers'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "list" -d 'List policies in evaluation order (priority desc, then name)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one policy (by name or id)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change the given settings of a policy; subject flags replace all subjects'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete a policy'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Make a policy take part in decisions again'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Keep a policy but ignore it in decisions'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "test" -d 'Explain what the policies decide for a user: one item, or (without an item) whether the target is visible at all'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Effective access of a user (or a role and groups): every target and item, the policy that decided it and the credential tier that would be injected'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "export" -d 'Print every policy as YAML (targets by name, users by email), for `apply`'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Make the policies match a file written like `export`\'s output (keyed by name)'
complete -c reflow -n "__fish_reflow_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "create" -d 'Create a token for a user; it is printed once, with a client config snippet'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "list" -d 'List tokens (all users\', or one user\'s with --user)'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "revoke" -d 'Revoke a token by id; effective immediately on every server'
complete -c reflow -n "__fish_reflow_using_subcommand token; and not __fish_seen_subcommand_from create list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -l user -d 'The owner, by email or id' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -l name -d 'A label, e.g. the client it is for' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -l expires-in -d 'Lifetime such as 30d or 12h (default: until revoked)' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -l user -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from revoke" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from revoke" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from revoke" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from revoke" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a token for a user; it is printed once, with a client config snippet'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "list" -d 'List tokens (all users\', or one user\'s with --user)'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a token by id; effective immediately on every server'
complete -c reflow -n "__fish_reflow_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -f -a "set" -d 'Set a target\'s token (or, with --env, one env entry). The value is prompted for without echo, or read from stdin (--value-stdin) or a file (--value-file); never from argv'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -f -a "unset" -d 'Remove a target\'s token (or, with --env, one env entry) at a scope'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -f -a "list" -d 'List which scopes have a token and which env keys are set; never the values'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -f -a "audit" -d 'Report stored rows that today\'s rules would refuse: deny-listed env keys (ignored at runtime) and user-scope values a user could no longer write (the target does not list them in user_env / user_token). Nothing is changed; remove rows with `secret unset`'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -f -a "rotate-key" -d 'Re-encrypt every stored value under a new 32-byte key (base64 or 64 hex digits in FILE), in one transaction, using the current key to open them'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and not __fish_seen_subcommand_from set unset list audit rotate-key help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l user -d 'For one user (email or id); wins over group, role and default' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l group -d 'For members of a group; groups are tried in name order' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l role -d 'For users with a role' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l env -d 'Set this env key instead of the token' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l value-file -d 'Read the value from a file (one trailing newline is dropped)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l default -d 'For everyone (the default; the least specific scope)'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l value-stdin -d 'Read the value from stdin (one trailing newline is dropped)'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l user -d 'For one user (email or id); wins over group, role and default' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l group -d 'For members of a group; groups are tried in name order' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l role -d 'For users with a role' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l env -d 'Remove this env key instead of the token' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l default -d 'For everyone (the default; the least specific scope)'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from unset" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from list" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from audit" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from audit" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from audit" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from audit" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from audit" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from audit" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -l new-key-file -d 'File holding the new key: 32 bytes as base64 or 64 hex digits' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from rotate-key" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set a target\'s token (or, with --env, one env entry). The value is prompted for without echo, or read from stdin (--value-stdin) or a file (--value-file); never from argv'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "unset" -d 'Remove a target\'s token (or, with --env, one env entry) at a scope'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "list" -d 'List which scopes have a token and which env keys are set; never the values'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "audit" -d 'Report stored rows that today\'s rules would refuse: deny-listed env keys (ignored at runtime) and user-scope values a user could no longer write (the target does not list them in user_env / user_token). Nothing is changed; remove rows with `secret unset`'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "rotate-key" -d 'Re-encrypt every stored value under a new 32-byte key (base64 or 64 hex digits in FILE), in one transaction, using the current key to open them'
complete -c reflow -n "__fish_reflow_using_subcommand secret; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l user -d 'Only entries of this user (email or user id)' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l target -d 'Only entries for this target (name)' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l method -d 'Only this MCP method, e.g. tools/call' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l decision -d 'Only allowed or only denied requests: allow or deny' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l since -d 'Only entries since this time: a duration back from now ("1h", "2d") or RFC 3339' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l trace-id -d 'Only the entry of this request: its W3C trace id (32 hex digits), as in a trace viewer' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l limit -d 'How many of the most recent entries to print first (1 to 1000)' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand logs" -s f -l follow -d 'Keep printing new entries, in time order, until Ctrl-C'
complete -c reflow -n "__fish_reflow_using_subcommand logs" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand logs" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand logs" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -f -a "migrate" -d 'Apply pending migrations (serve and every admin command also do this)'
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -f -a "status" -d 'Show each migration and when it was applied'
complete -c reflow -n "__fish_reflow_using_subcommand db; and not __fish_seen_subcommand_from migrate status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from status" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from status" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from status" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Apply pending migrations (serve and every admin command also do this)'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show each migration and when it was applied'
complete -c reflow -n "__fish_reflow_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate the configuration and print the effective values (secrets redacted)'
complete -c reflow -n "__fish_reflow_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from check" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from check" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from check" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from check" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate the configuration and print the effective values (secrets redacted)'
complete -c reflow -n "__fish_reflow_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand completions" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand completions" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand completions" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand completions" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand completions" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand completions" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l listen -d 'Address to listen on. Loopback by default; any other address needs --token-env, since the bridge runs the server\'s tools for whoever reaches it' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l path -d 'The endpoint path (`/health` answers probes without a token)' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l token-env -d 'Require `Authorization: Bearer <value of this environment variable>`. The variable is not passed on to the stdio server' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l idle-timeout -d 'End a session (and its process) after this long without requests or an open GET stream' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l max-sessions -d 'At most this many sessions (processes) at once; more `initialize`s get HTTP 503' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l request-timeout -d 'How long one request may wait for the stdio server\'s answer' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l allow-host -d 'Another Host name clients use for the bridge (repeatable). Loopback names are always allowed on a loopback listener; naming any host turns the check on for other listeners' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l allow-origin -d 'A browser Origin allowed besides those of the allowed hosts (repeatable)' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand bridge" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l transport -d 'auto: probe the era (2026-07-28 `server/discover`, then legacy `initialize`, then legacy SSE); streamable-http: legacy Streamable HTTP only; sse: legacy HTTP+SSE only' -r -f -a "auto\t''
streamable-http\t''
sse\t''"
complete -c reflow -n "__fish_reflow_using_subcommand probe" -s H -l header -d 'A request header, `\'Name: value\'` (repeatable); values are never printed' -r
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l call -d 'Call this tool after listing' -r
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l args -d 'Arguments for --call, a JSON object' -r
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l timeout -d 'Per request timeout' -r
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l conformance-context -d 'Set by the conformance harness in client mode: a JSON object whose `toolCalls` (`[{name, arguments}]`) replace the made-up calls of --call-each' -r
complete -c reflow -n "__fish_reflow_using_subcommand probe" -s c -l config -d 'Config file (YAML). Also REFLOW_CONFIG. Without one, defaults and REFLOW_* variables apply' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l data-dir -d 'Data directory for the SQLite database and generated secrets (default ./reflow-data)' -r -F
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l database-url -d 'Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides the config)' -r
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l call-each -d 'Call every listed tool, with arguments made up from each input schema'
complete -c reflow -n "__fish_reflow_using_subcommand probe" -l json -d 'Print machine-readable JSON instead of tables'
complete -c reflow -n "__fish_reflow_using_subcommand probe" -s h -l help -d 'Print help'
complete -c reflow -n "__fish_reflow_using_subcommand probe" -s V -l version -d 'Print version'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "serve" -d 'Run the gateway: MCP endpoint, admin API and health checks on one port'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "user" -d 'Manage user accounts'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "target" -d 'Manage targets: the upstream MCP servers behind the gateway'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "policy" -d 'Manage access policies: who may use which tools, resources and prompts'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "token" -d 'Manage API tokens for MCP clients'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "secret" -d 'Manage upstream credentials: target tokens and env entries, and key rotation'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "logs" -d 'Show the audit log: who called what, and the policy decision'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "db" -d 'Database migrations'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "config" -d 'Inspect the configuration'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "completions" -d 'Print a shell completion script'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "bridge" -d 'Serve one stdio MCP server over Streamable HTTP (one process per session)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "probe" -d 'Connect to one HTTP MCP upstream, list what it serves, optionally call a tool'
complete -c reflow -n "__fish_reflow_using_subcommand help; and not __fish_seen_subcommand_from serve user target policy token secret logs db config completions bridge probe help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Create an account. The password is prompted for, or read from stdin with --password-stdin'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List accounts'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "show" -d 'Show one account (by email or id) and its API tokens'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "set-role" -d 'Change an account\'s role'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "set-groups" -d 'Replace an account\'s groups (none given: no groups)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Set a new password (prompted, or --password-stdin)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "remove" -d 'Delete an account and its API tokens'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "recycle" -d 'End an account\'s MCP sessions (by email or id); its clients initialize again'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "add" -d 'Add a target: `--url URL` for HTTP, or `--stdio -- COMMAND ARGS...` for a local process'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "list" -d 'List targets'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "show" -d 'Show one target (by name or id)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "update" -d 'Change the given settings of a target; others stay as they are'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "remove" -d 'Delete a target with its policies and stored credentials'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "enable" -d 'Route traffic to a target again'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "disable" -d 'Stop routing to a target without deleting it'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "test" -d 'Connect to a target (with the default scope\'s credentials) and report its era, protocol version, server and what it offers'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "instances" -d 'List a stdio target\'s processes (every replica\'s, as recorded), live ones first'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from target" -f -a "restart" -d 'Stop a stdio or kubernetes target\'s processes or pods on every replica; for an HTTP target, drop every replica\'s upstream sessions and connections to it. The next use starts them again'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "add" -d 'Add a policy: `--effect allow|deny`, who it is about, and what it covers'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "list" -d 'List policies in evaluation order (priority desc, then name)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "show" -d 'Show one policy (by name or id)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "update" -d 'Change the given settings of a policy; subject flags replace all subjects'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "remove" -d 'Delete a policy'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "enable" -d 'Make a policy take part in decisions again'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "disable" -d 'Keep a policy but ignore it in decisions'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "test" -d 'Explain what the policies decide for a user: one item, or (without an item) whether the target is visible at all'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "explain" -d 'Effective access of a user (or a role and groups): every target and item, the policy that decided it and the credential tier that would be injected'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "export" -d 'Print every policy as YAML (targets by name, users by email), for `apply`'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "apply" -d 'Make the policies match a file written like `export`\'s output (keyed by name)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Create a token for a user; it is printed once, with a client config snippet'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "list" -d 'List tokens (all users\', or one user\'s with --user)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "revoke" -d 'Revoke a token by id; effective immediately on every server'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "set" -d 'Set a target\'s token (or, with --env, one env entry). The value is prompted for without echo, or read from stdin (--value-stdin) or a file (--value-file); never from argv'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "unset" -d 'Remove a target\'s token (or, with --env, one env entry) at a scope'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "list" -d 'List which scopes have a token and which env keys are set; never the values'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "audit" -d 'Report stored rows that today\'s rules would refuse: deny-listed env keys (ignored at runtime) and user-scope values a user could no longer write (the target does not list them in user_env / user_token). Nothing is changed; remove rows with `secret unset`'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from secret" -f -a "rotate-key" -d 'Re-encrypt every stored value under a new 32-byte key (base64 or 64 hex digits in FILE), in one transaction, using the current key to open them'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "migrate" -d 'Apply pending migrations (serve and every admin command also do this)'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "status" -d 'Show each migration and when it was applied'
complete -c reflow -n "__fish_reflow_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate the configuration and print the effective values (secrets redacted)'
