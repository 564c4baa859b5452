#!/bin/sh
# Entrypoint of the halo-survey images.
#
#   docker run IMAGE scan --region gleam ...   -> halo-survey scan --region gleam ...
#   docker run IMAGE halo-survey query RUN     -> halo-survey query RUN
#   docker run IMAGE ray start --head ...      -> ray start --head ...   (Ray cluster nodes)
#   docker run IMAGE bash                      -> bash                  (Ray cluster launcher)
#
# A halo-survey sub-command (or an option, or nothing) goes to halo-survey; anything else is
# run as a command, so the same image serves as a Ray head/worker node and as a CLI.
set -e
case "${1:-}" in
    ""|-*|scan|targets|tiles|query|plot|catalog|inspect|inject)
        exec halo-survey "$@" ;;
    *)
        exec "$@" ;;
esac
