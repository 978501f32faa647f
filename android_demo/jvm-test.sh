#!/bin/sh
# Run the app's JUnit4 tests on a plain JVM, without Gradle or the Android SDK: only the pure logic
# (app/src/main/java/dev/edgefgic/demo/logic, no android.* imports) and its tests are compiled, in one
# kotlinc call, then run with JUnit's own runner. Exit status: JUnit's (0 = all passed); 2 = tools missing.
#
#   sh android_demo/jvm-test.sh                      # fixture tests skipped
#   EDGE_FGIC_FIXTURES=DIR sh android_demo/jvm-test.sh  # DIR written by tests/test_android_demo.py
#
# Env: EDGE_FGIC_FIXTURES  fixture folder (unset: the fixture tests are skipped, the others run)
#      JVM_TEST_BUILD      build folder (default android_demo/build/jvm-test); a build is reused while the
#                          sources are byte-identical, so only the first run pays kotlinc's startup
#      KOTLINC, JUNIT_JAR, HAMCREST_JAR, KOTLIN_STDLIB   tool and jar locations (Debian's by default)
# Works with Debian's kotlin 1.3.31 (apt-get install kotlin junit4) as well as a current kotlinc.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
kotlinc=${KOTLINC:-$(command -v kotlinc || true)}
junit=${JUNIT_JAR:-/usr/share/java/junit4.jar}
hamcrest=${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}
if [ -z "$kotlinc" ] || [ ! -f "$junit" ] || [ ! -f "$hamcrest" ]; then
    echo "jvm-test: needs kotlinc, $junit and $hamcrest (install: apt-get install kotlin junit4)" >&2
    exit 2
fi
# the stdlib that ships with this kotlinc (bin/../lib), else Debian's
stdlib=${KOTLIN_STDLIB:-$(dirname "$(readlink -f "$kotlinc")")/../lib/kotlin-stdlib.jar}
[ -f "$stdlib" ] || stdlib=/usr/share/java/kotlin-stdlib.jar

main=$here/app/src/main/java/dev/edgefgic/demo/logic
tests=$here/app/src/test/java/dev/edgefgic/demo/logic
build=${JVM_TEST_BUILD:-$here/build/jvm-test}
sources=$(ls "$main"/*.kt "$tests"/*.kt)
stamp=$(cat $sources | { sha256sum 2>/dev/null || shasum -a 256; } | cut -d' ' -f1)

if [ "$(cat "$build/stamp" 2>/dev/null || true)" != "$stamp" ]; then
    rm -rf "$build/classes" "$build/stamp"
    mkdir -p "$build/classes"
    t0=$(date +%s)
    # kotlinc is a short-lived JVM: C1-only JIT and the serial GC halve its time here (25 s -> 12 s on 2 cores).
    # -no-reflect: nothing uses kotlin-reflect; -nowarn: newer-Kotlin deprecations are not this run's business
    JAVA_OPTS=${JAVA_OPTS:-"-Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"} \
        "$kotlinc" -no-reflect -nowarn -cp "$junit:$hamcrest" -d "$build/classes" $sources
    echo "$stamp" > "$build/stamp"
    echo "jvm-test: compiled $(echo $sources | wc -w) files in $(( $(date +%s) - t0 )) s"
fi

classes=$(for f in "$tests"/*Test.kt; do echo "dev.edgefgic.demo.logic.$(basename "$f" .kt)"; done)
exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$build/classes:$stdlib:$junit:$hamcrest" org.junit.runner.JUnitCore $classes
