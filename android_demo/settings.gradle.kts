pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()       // AndroidX (CameraX) and LiteRT (com.google.ai.edge.litert)
        mavenCentral() // JUnit
    }
}
rootProject.name = "edge-fgic-demo"
include(":app")
