// Scanning with CameraX: each frame's luma (Y) plane goes to the library's QR decoder with its row
// stride, at most one frame at a time. A text that is a token or an enrollment link is handed to
// the model once (the same code seen in the next frames is not handed again, so a failed add is
// not repeated); the camera is released when the screen goes.
package dev.tessera.app.ui

import android.Manifest
import android.content.pm.PackageManager
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.platform.LocalLifecycleOwner
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import dev.tessera.core.Scanned
import dev.tessera.core.decodeQrLuma
import dev.tessera.core.parseScanned
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicReference

@Composable
fun ScanScreen(onText: (String) -> Unit, onClose: () -> Unit) {
    val context = LocalContext.current
    val lifecycle = LocalLifecycleOwner.current
    var allowed by remember {
        mutableStateOf(ContextCompat.checkSelfPermission(context, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED)
    }
    val ask = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) { allowed = it }
    LaunchedEffect(Unit) { if (!allowed) ask.launch(Manifest.permission.CAMERA) }
    Column {
        TextButton(onClick = onClose) { Text("Close") }
        if (!allowed) {
            Text("Tessera needs the camera to read QR codes.")
            return@Column
        }
        val analyzer = remember { Executors.newSingleThreadExecutor() }
        val providerFuture = remember { ProcessCameraProvider.getInstance(context) }
        val tried = remember { AtomicReference<String?>(null) }
        DisposableEffect(Unit) {
            onDispose {
                providerFuture.addListener({ providerFuture.get().unbindAll() }, ContextCompat.getMainExecutor(context))
                analyzer.shutdown()
            }
        }
        AndroidView(modifier = Modifier.fillMaxSize(), factory = { viewContext ->
            val view = PreviewView(viewContext)
            providerFuture.addListener({
                val preview = Preview.Builder().build().also { it.surfaceProvider = view.surfaceProvider }
                val analysis = ImageAnalysis.Builder()
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .build()
                analysis.setAnalyzer(analyzer) { image ->
                    image.use {
                        val plane = it.planes[0]
                        val luma = ByteArray(plane.buffer.remaining()).also { bytes -> plane.buffer.get(bytes) }
                        val texts = runCatching {
                            decodeQrLuma(it.width.toUInt(), it.height.toUInt(), plane.rowStride.toUInt(), luma)
                        }.getOrDefault(emptyList())
                        texts.firstOrNull { text -> runCatching { parseScanned(text) !is Scanned.Other }.getOrDefault(true) }
                            ?.takeIf { text -> tried.getAndSet(text) != text }
                            ?.let { text -> ContextCompat.getMainExecutor(viewContext).execute { onText(text) } }
                    }
                }
                providerFuture.get().apply {
                    unbindAll()
                    bindToLifecycle(lifecycle, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
                }
            }, ContextCompat.getMainExecutor(viewContext))
            view
        })
    }
}
