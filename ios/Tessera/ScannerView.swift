// Scanning with AVFoundation: each frame's luma plane (the Y plane of the camera's bi-planar
// 4:2:0 buffer, with its row stride) goes to the library's QR decoder; a text that is a token or
// an enrollment link is handed back once (the same code in the next frames is not handed again,
// so a failed add is not repeated, while another code can still be tried).
import AVFoundation
import SwiftUI

struct ScannerView: UIViewControllerRepresentable {
    let onText: (String) -> Void

    func makeUIViewController(context: Context) -> ScannerController { ScannerController(onText: onText) }
    func updateUIViewController(_ controller: ScannerController, context: Context) {}
}

final class ScannerController: UIViewController, AVCaptureVideoDataOutputSampleBufferDelegate {
    private let session = AVCaptureSession()
    private let frames = DispatchQueue(label: "dev.tessera.scan")
    private let onText: (String) -> Void
    private var tried: String?
    private var preview: AVCaptureVideoPreviewLayer?

    init(onText: @escaping (String) -> Void) {
        self.onText = onText
        super.init(nibName: nil, bundle: nil)
    }

    required init?(coder: NSCoder) { nil }

    override func viewDidLoad() {
        super.viewDidLoad()
        guard let camera = AVCaptureDevice.default(for: .video), let input = try? AVCaptureDeviceInput(device: camera) else { return }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: frames)
        session.addOutput(output)
        let preview = AVCaptureVideoPreviewLayer(session: session)
        preview.videoGravity = .resizeAspectFill
        view.layer.addSublayer(preview)
        self.preview = preview
        frames.async { self.session.startRunning() }
    }

    override func viewDidLayoutSubviews() {
        super.viewDidLayoutSubviews()
        preview?.frame = view.bounds
    }

    override func viewWillDisappear(_ animated: Bool) {
        super.viewWillDisappear(animated)
        frames.async { self.session.stopRunning() }
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sample: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let buffer = CMSampleBufferGetImageBuffer(sample) else { return }
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        guard let base = CVPixelBufferGetBaseAddressOfPlane(buffer, 0) else { return }
        let width = CVPixelBufferGetWidthOfPlane(buffer, 0)
        let height = CVPixelBufferGetHeightOfPlane(buffer, 0)
        let stride = CVPixelBufferGetBytesPerRowOfPlane(buffer, 0)
        let luma = Data(bytes: base, count: stride * height)
        let texts = (try? decodeQrLuma(width: UInt32(width), height: UInt32(height), rowStride: UInt32(stride), luma: luma)) ?? []
        guard let text = texts.first(where: { (try? parseScanned(text: $0)) != .other }), text != tried else { return }
        tried = text
        DispatchQueue.main.async { self.onText(text) }
    }
}
