# views.sh: a domain's nested tree and its flat view (.by-name) agree.
# shellcheck shell=bash
#
# Sourced after common.sh by the tests that check a tree's consistency.

# nested_dirs DOMDIR: every snapshot directory of the nested tree, relative
# to DOMDIR, one a line, as a walk finds them (it does not enter .by-name,
# which the domain directory does not list); disks/ and files/ are left out.
nested_dirs() {
    (cd "$1" && find . -mindepth 1 \( -name disks -o -name files \) -prune -o -type d -printf '%P\n')
}

# check_views DOMDIR WHAT: .by-name holds exactly the snapshots of the
# nested tree, each once; each flat directory has its nested directory's
# metadata.xml, mtime and own entries and no child snapshots; each nested
# directory sits in its metadata's parent.
check_views() {
    local d=$1 what=$2 rel n parent p nested flat
    nested=$(nested_dirs "$d" | sed 's|.*/||' | sort)
    flat=$(ls "$d/.by-name" | sort)
    assert_eq "$what: .by-name vs the nested tree" "$nested" "$flat"
    [ "$(printf '%s\n' "$nested" | sort | uniq -d)" == "" ] ||
        fail "$what: a snapshot appears twice in the nested tree"
    while read -r rel; do
        [ -n "$rel" ] || continue
        n=${rel##*/}
        parent=$(dirname "$rel")
        [ "$parent" != . ] || parent=""
        parent=${parent##*/}
        p=$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$d/.by-name/$n/metadata.xml")
        assert_eq "$what: directory of $n" "$p" "$parent"
        cmp -s "$d/$rel/metadata.xml" "$d/.by-name/$n/metadata.xml" ||
            fail "$what: metadata.xml of $n differs between the views"
        assert_eq "$what: mtime of .by-name/$n" "$(stat -c %Y "$d/$rel")" \
            "$(stat -c %Y "$d/.by-name/$n")"
        assert_eq "$what: own entries of .by-name/$n" \
            "$(cd "$d/$rel" && find . -mindepth 1 -maxdepth 1 ! -type d -printf '%f\n' | sort)" \
            "$(cd "$d/.by-name/$n" && find . -mindepth 1 -maxdepth 1 ! -type d -printf '%f\n' | sort)"
        [ -z "$(cd "$d/.by-name/$n" && find . -mindepth 1 -maxdepth 1 -type d ! -name disks ! -name files)" ] ||
            fail "$what: .by-name/$n holds child directories"
    done <<<"$(nested_dirs "$d")"
}
