#!/bin/sh
# Used by docker/Dockerfile (builder stage) after `pip install .`: a wheel carries only the
# Python modules, but the installed recsys_gql also reads files beside them at run time:
#   recsys_gql/graphiql/package.json   GraphiQL's pinned versions (checked at each render)
#   recsys_gql/graphiql/node_modules   GraphiQL's assets (`npm ci --prefix recsys_gql/graphiql`)
#   recsys_gql/web/dist                the built page (`npm run build --prefix recsys_gql/web`)
# This copies them from a source tree where they were installed and built into the installed
# package, and fails, naming the file, when one is missing.
#
# Usage: install-assets.sh SOURCE_TREE [SITE_PACKAGES]   (default: this python's purelib)
set -eu

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: install-assets.sh SOURCE_TREE [SITE_PACKAGES]" >&2
    exit 64
fi
src="$1"
site="${2:-$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")}"
package="$site/recsys_gql"

if [ ! -f "$package/__init__.py" ]; then
    echo "install-assets: recsys_gql is not installed in $site" >&2
    exit 1
fi
for needed in recsys_gql/graphiql/package.json recsys_gql/graphiql/node_modules \
    recsys_gql/web/dist/index.html; do
    if [ ! -e "$src/$needed" ]; then
        echo "install-assets: $src/$needed is missing: install and build the assets first" >&2
        exit 1
    fi
done

rm -rf "$package/graphiql/node_modules" "$package/web/dist"
mkdir -p "$package/graphiql" "$package/web"
cp "$src/recsys_gql/graphiql/package.json" "$package/graphiql/"
cp -R "$src/recsys_gql/graphiql/node_modules" "$package/graphiql/"
cp -R "$src/recsys_gql/web/dist" "$package/web/"
echo "install-assets: GraphiQL's assets and the built page copied into $package"
