plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.edgefgic.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.edgefgic.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    // model.tflite is memory-mapped straight from the APK (AssetManager.openFd), which needs it uncompressed
    androidResources {
        noCompress += "tflite"
    }
}

tasks.withType<org.jetbrains.kotlin.gradle.tasks.KotlinCompile>().configureEach {
    compilerOptions.jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
}

// `EDGE_FGIC_FIXTURES=... ./gradlew test` runs the fixture tests too (fixtures: tests/test_android_demo.py)
tasks.withType<Test>().configureEach {
    System.getenv("EDGE_FGIC_FIXTURES")?.let { environment("EDGE_FGIC_FIXTURES", it) }
    testLogging {
        events("passed", "skipped", "failed")
        showStandardStreams = true
    }
}

val camerax = "1.4.1"

dependencies {
    implementation("androidx.core:core-ktx:1.13.1")
    implementation("androidx.activity:activity-ktx:1.9.3")
    implementation("androidx.camera:camera-core:$camerax")
    implementation("androidx.camera:camera-camera2:$camerax")
    implementation("androidx.camera:camera-lifecycle:$camerax")
    implementation("androidx.camera:camera-view:$camerax")
    // LiteRT, the renamed TensorFlow Lite runtime; still provides org.tensorflow.lite.Interpreter.
    // 1.4.1, not 1.4.0: LiteRT's release table lists 1.4.0 with min SDK 26 (1.4.1: 21), above this app's 24.
    // CPU (XNNPACK) only: no GPU delegate dependency.
    implementation("com.google.ai.edge.litert:litert:1.4.1")

    testImplementation("junit:junit:4.13.2")
}
