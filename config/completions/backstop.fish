# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_backstop_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_backstop_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_backstop_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_backstop_using_subcommand
    set -l cmd (__fish_backstop_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c backstop -n "__fish_backstop_needs_command" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c backstop -n "__fish_backstop_needs_command" -s V -l version -d 'Print version'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "run" -d 'Run the daemon (SIGTERM/SIGINT stop it, SIGHUP reloads the config)'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "check-config" -d 'Validate a config file; exits non-zero and lists every problem when it is invalid'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "status" -d 'Print each watch\'s state from a running daemon'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "history" -d 'List past deployments and their verdicts, newest first'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "explain" -d 'Print one verdict\'s evidence as a readable report (ID from `history` or status)'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "pause" -d 'Pause a watch: deployments are recorded, not observed or acted on (persisted)'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "resume" -d 'Resume a paused watch'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "backtest" -d 'Replay a watch\'s past deployments against Prometheus history: what backstop would have decided, when and why. Read-only: lists deployments from the deployer (Octopus), never deploys'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "demo" -d 'Watch backstop catch a bad release and roll it back: a simulated service and deployment tool, real HTTP on loopback, no config, under a minute'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "simulate" -d 'Serve the demo\'s simulated service and Octopus-shaped deployment API (for benchmarks); prints their URLs as JSON and runs until SIGTERM/SIGINT'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "man" -d 'Print the man page (roff), generated from this command line definition'
complete -c backstop -n "__fish_backstop_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c backstop -n "__fish_backstop_using_subcommand run" -s c -l config -d 'Config file (TOML)' -r -F
complete -c backstop -n "__fish_backstop_using_subcommand run" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand run" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand check-config" -s c -l config -r -F
complete -c backstop -n "__fish_backstop_using_subcommand check-config" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand status" -l url -d 'Base URL of the daemon\'s API' -r
complete -c backstop -n "__fish_backstop_using_subcommand status" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand status" -l json -d 'Print the raw JSON document instead of a table'
complete -c backstop -n "__fish_backstop_using_subcommand status" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand history" -l url -r
complete -c backstop -n "__fish_backstop_using_subcommand history" -l limit -d 'How many entries' -r
complete -c backstop -n "__fish_backstop_using_subcommand history" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand history" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand explain" -l url -r
complete -c backstop -n "__fish_backstop_using_subcommand explain" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand explain" -l json -d 'Print the raw evidence document (JSON)'
complete -c backstop -n "__fish_backstop_using_subcommand explain" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand pause" -l url -r
complete -c backstop -n "__fish_backstop_using_subcommand pause" -l token-file -d 'File holding the API bearer token (e.g. /etc/backstop/token)' -r -F
complete -c backstop -n "__fish_backstop_using_subcommand pause" -l token-env -d 'Environment variable holding the token' -r
complete -c backstop -n "__fish_backstop_using_subcommand pause" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand pause" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand resume" -l url -r
complete -c backstop -n "__fish_backstop_using_subcommand resume" -l token-file -d 'File holding the API bearer token (e.g. /etc/backstop/token)' -r -F
complete -c backstop -n "__fish_backstop_using_subcommand resume" -l token-env -d 'Environment variable holding the token' -r
complete -c backstop -n "__fish_backstop_using_subcommand resume" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand resume" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -s c -l config -r -F
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -l watch -d 'The watch to backtest' -r
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -l from -d 'Start of the range: RFC 3339 (2025-05-01T10:00:00Z) or a duration ago (7d, 36h)' -r
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -l to -d 'End of the range, like --from (default: now)' -r
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -l json -d 'Print the JSON document instead of a table'
complete -c backstop -n "__fish_backstop_using_subcommand backtest" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand demo" -l scenario -d 'What goes wrong with the new release' -r -f -a "bad-health\t'The new release\'s /health answers 503'
error-spike\t'A quarter of its requests fail with 500'
slow\t'Its latency is five times the baseline'
noisy-good\t'Healthy but noisy (a failed health check in three): kept, not rolled back'
flapping\t'Down three checks out of four'"
complete -c backstop -n "__fish_backstop_using_subcommand demo" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand demo" -l list -d 'List the scenarios'
complete -c backstop -n "__fish_backstop_using_subcommand demo" -l json -d 'Print the evidence documents (JSON) instead of the live view'
complete -c backstop -n "__fish_backstop_using_subcommand demo" -l stay -d 'After the scenario, keep the daemon and the simulations running and print the dashboard\'s URL; Ctrl-C stops'
complete -c backstop -n "__fish_backstop_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c backstop -n "__fish_backstop_using_subcommand simulate" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand completions" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand completions" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand man" -l log-format -d 'Log format: human-readable text or one JSON object per line' -r -f -a "text\t''
json\t''"
complete -c backstop -n "__fish_backstop_using_subcommand man" -s h -l help -d 'Print help'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "run" -d 'Run the daemon (SIGTERM/SIGINT stop it, SIGHUP reloads the config)'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "check-config" -d 'Validate a config file; exits non-zero and lists every problem when it is invalid'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "status" -d 'Print each watch\'s state from a running daemon'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "history" -d 'List past deployments and their verdicts, newest first'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "explain" -d 'Print one verdict\'s evidence as a readable report (ID from `history` or status)'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "pause" -d 'Pause a watch: deployments are recorded, not observed or acted on (persisted)'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "resume" -d 'Resume a paused watch'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "backtest" -d 'Replay a watch\'s past deployments against Prometheus history: what backstop would have decided, when and why. Read-only: lists deployments from the deployer (Octopus), never deploys'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "demo" -d 'Watch backstop catch a bad release and roll it back: a simulated service and deployment tool, real HTTP on loopback, no config, under a minute'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "simulate" -d 'Serve the demo\'s simulated service and Octopus-shaped deployment API (for benchmarks); prints their URLs as JSON and runs until SIGTERM/SIGINT'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "man" -d 'Print the man page (roff), generated from this command line definition'
complete -c backstop -n "__fish_backstop_using_subcommand help; and not __fish_seen_subcommand_from run check-config status history explain pause resume backtest demo simulate completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
