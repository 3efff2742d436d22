#!/usr/bin/env bash
# make test-matrix: the whole suite once under each machine variant that may change results
# (docs/testing.md). Usage: test_matrix.sh PYTHON [pytest args...]; MATRIX="threads-1 tz-la"
# picks variants. A variant that cannot run on this machine says so and counts as failed.
set -u
PY=${1:?python}; shift
VARIANTS=${MATRIX:-"threads-1 threads-2 omp-1 one-core tz-la lang-c lang-de"}
LOCALES=.cache/locale
failed=()

# de_DE.UTF-8 from the glibc locale sources (no root: compiled into .cache/locale, used via LOCPATH).
german_locale() {
    if locale -a 2>/dev/null | grep -qix 'de_DE.utf-\?8'; then return 0; fi
    [ -d "$LOCALES/de_DE.UTF-8" ] && return 0
    command -v localedef >/dev/null && [ -e /usr/share/i18n/locales/de_DE ] || return 1
    mkdir -p "$LOCALES" && localedef -i de_DE -f UTF-8 "$LOCALES/de_DE.UTF-8" 2>/dev/null
}

for v in $VARIANTS; do
    prefix=(env -u LC_ALL QT_QPA_PLATFORM=offscreen)
    case $v in
        threads-1) prefix+=(NEUROHSI_TORCH_THREADS=1) ;;
        threads-2) prefix+=(NEUROHSI_TORCH_THREADS=2) ;;
        omp-1) prefix+=(OMP_NUM_THREADS=1) ;;
        one-core)
            if ! command -v taskset >/dev/null; then echo "== $v: taskset not found (util-linux): FAILED"; failed+=("$v"); continue; fi
            prefix=(taskset -c 0 "${prefix[@]}") ;;
        tz-la) prefix+=(TZ=America/Los_Angeles) ;;
        lang-c) prefix+=(LANG=C.UTF-8) ;;
        lang-de)
            if ! german_locale; then
                echo "== $v: locale de_DE.UTF-8 is not available and cannot be generated" \
                     "(needs localedef and /usr/share/i18n/locales/de_DE: apt-get install locales): FAILED"
                failed+=("$v"); continue
            fi
            prefix+=(LANG=de_DE.UTF-8 LOCPATH="$PWD/$LOCALES") ;;
        *) echo "== $v: unknown variant: FAILED"; failed+=("$v"); continue ;;
    esac
    echo "== $v: ${prefix[*]} $PY -m pytest -q $*"
    "${prefix[@]}" "$PY" -m pytest -q -p no:cacheprovider "$@" || failed+=("$v")
done

if [ ${#failed[@]} -gt 0 ]; then echo "test-matrix FAILED: ${failed[*]}"; exit 1; fi
echo "test-matrix: every variant passed ($VARIANTS)"
