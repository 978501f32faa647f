package dev.edgefgic.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Color
import android.graphics.Typeface
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.view.Gravity
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.FrameLayout
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import dev.edgefgic.demo.logic.LatencyTracker
import dev.edgefgic.demo.logic.ModelCheck
import dev.edgefgic.demo.logic.ModelFileException
import dev.edgefgic.demo.logic.Overlay
import dev.edgefgic.demo.logic.Postprocess
import dev.edgefgic.demo.logic.ProbabilitySmoother
import java.io.FileNotFoundException
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Camera preview with the classifier's top-3, latency and model name overlaid; one model, from the assets. */
class MainActivity : ComponentActivity() {
    private lateinit var previewView: PreviewView
    private lateinit var overlay: TextView
    private var imageAnalysis: ImageAnalysis? = null
    private val analysisThread: ExecutorService = Executors.newSingleThreadExecutor()

    // used on the analysis thread only
    private var classifier: TfliteClassifier? = null
    private val smoother = ProbabilitySmoother(alpha = 0.3f)
    private val inferenceMs = LatencyTracker(window = 30)
    private val frameMs = LatencyTracker(window = 30)
    private var pixels = IntArray(0)

    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else show("The demo needs the camera: allow it in the app's settings.")
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        previewView = PreviewView(this)
        overlay = TextView(this).apply {
            typeface = Typeface.MONOSPACE
            textSize = 15f
            setTextColor(Color.WHITE)
            setBackgroundColor(0xAA000000.toInt())
            setPadding(32, 24, 32, 24)
        }
        setContentView(FrameLayout(this).apply {
            addView(previewView, FrameLayout.LayoutParams(MATCH_PARENT, MATCH_PARENT))
            addView(overlay, FrameLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT, Gravity.BOTTOM))
        })
        show("Loading ${TfliteClassifier.ASSET} ...")
        analysisThread.execute { loadModel() } // same thread as the analyzer: loaded before the first frame
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            askCamera.launch(Manifest.permission.CAMERA)
        }
    }

    private fun loadModel() {
        try {
            val c = TfliteClassifier.fromAsset(this)
            Log.i(TAG, c.checked.summary)
            c.checked.note?.let { Log.i(TAG, it) } // e.g. no sidecar: the embedded manifest is used (not an error)
            classifier = c // the note, if any, is the overlay's last line on every frame
        } catch (e: FileNotFoundException) {
            refuse("No model. Copy an export to app/src/main/assets/${TfliteClassifier.ASSET} (and its " +
                "${TfliteClassifier.SIDECAR}) and rebuild (see README).")
        } catch (e: ModelFileException) {
            refuse(ModelCheck.oneLine(e.message)) // already one line naming the file and the fix
        } catch (e: Exception) { // the interpreter refusing the file (unsupported op, corrupt data): first line only
            refuse("${TfliteClassifier.ASSET}: the LiteRT interpreter cannot load it (${ModelCheck.oneLine(e.message ?: e.javaClass.simpleName)}); re-export it")
        }
    }

    private fun refuse(line: String) {
        Log.w(TAG, line)
        show(line)
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val preview = Preview.Builder().build().also { it.setSurfaceProvider(previewView.surfaceProvider) }
            // RGBA frames convert to a Bitmap without a YUV pass; KEEP_ONLY_LATEST drops frames while the model runs
            val analysis = ImageAnalysis.Builder()
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .build()
            analysis.setAnalyzer(analysisThread) { image -> analyze(image) }
            imageAnalysis = analysis
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        try {
            val c = classifier ?: return // not loaded (the overlay says why)
            val t0 = SystemClock.elapsedRealtimeNanos()
            val bitmap = image.toBitmap() // ARGB_8888 as the sensor delivered it: not yet rotated
            val w = bitmap.width
            val h = bitmap.height
            if (pixels.size != w * h) pixels = IntArray(w * h)
            bitmap.getPixels(pixels, 0, w, 0, 0, w, h)
            bitmap.recycle()
            val result = c.classify(pixels, w, h, image.imageInfo.rotationDegrees)
            val probabilities = smoother.update(result.probabilities)
            inferenceMs.add(result.inferenceMs)
            frameMs.add((SystemClock.elapsedRealtimeNanos() - t0) / 1e6)
            show(Overlay.format(c.spec, Postprocess.topK(probabilities, c.spec.classes, 3), inferenceMs.median, frameMs.median,
                                c.checked.note))
        } catch (e: Exception) {
            show("Frame failed: ${ModelCheck.oneLine(e.message ?: e.javaClass.simpleName)}")
        } finally {
            image.close() // the next frame is delivered only after this one is closed
        }
    }

    private fun show(text: String) = runOnUiThread { overlay.text = text }

    companion object {
        private const val TAG = "edge-fgic"
    }

    override fun onDestroy() {
        super.onDestroy()
        imageAnalysis?.clearAnalyzer()
        analysisThread.execute { classifier?.close(); classifier = null } // after any frame in flight
        analysisThread.shutdown()
    }
}
