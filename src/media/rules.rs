//! Turning an uploaded file into the image we store: plain functions, no I/O.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use super::Error;

/// Larger sides are refused before decoding: 10 000² RGBA is 400 MB.
pub const MAX_SIDE: u32 = 10_000;
/// What a decoder may allocate for one image.
const MAX_DECODER_ALLOC: u64 = 256 * 1024 * 1024;
const JPEG_QUALITY: u8 = 85;

/// What the image is for: decides its shape and largest size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Square, at most 400×400 (what Mastodon shows).
    Avatar,
    /// 3:1, at most 1500×500 (Mastodon's header size).
    Banner,
}

impl Purpose {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "avatar" => Some(Self::Avatar),
            "banner" => Some(Self::Banner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avatar => "avatar",
            Self::Banner => "banner",
        }
    }

    fn max_size(self) -> (u32, u32) {
        match self {
            Self::Avatar => (400, 400),
            Self::Banner => (1500, 500),
        }
    }
}

/// A re-encoded image ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    /// Hex SHA-256 of `bytes`: the stored image's name.
    pub sha256: String,
}

impl Processed {
    pub fn extension(&self) -> &'static str {
        extension(self.content_type)
    }
}

pub fn extension(content_type: &str) -> &'static str {
    if content_type == "image/png" { "png" } else { "jpg" }
}

/// Decodes `input` (whatever it claims to be), crops it to the purpose's shape, scales it down
/// and encodes it anew: PNG when it has transparency, JPEG otherwise. Slow for large images
/// (tens of milliseconds): call it off the async runtime.
pub fn process(input: &[u8], purpose: Purpose, max_bytes: usize) -> Result<Processed, Error> {
    if input.len() > max_bytes {
        return Err(Error::TooLarge {
            max_mib: max_bytes.div_ceil(1024 * 1024),
        });
    }
    if input.is_empty() {
        return Err(Error::Missing);
    }
    let format = image::guess_format(input).map_err(|_| Error::Unsupported)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(Error::Unsupported);
    }
    let mut reader = ImageReader::with_format(Cursor::new(input), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // A camera's JPEG is often stored sideways with an EXIF note to turn it; the note goes, so
    // the turn happens now.
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    img.apply_orientation(orientation);
    let img = fit(&img, purpose.max_size());
    encode(&img)
}

fn decode_error(e: ImageError) -> Error {
    match e {
        ImageError::Limits(_) => Error::TooManyPixels { max: MAX_SIDE },
        ImageError::Unsupported(_) => Error::Unsupported,
        _ => Error::Corrupt,
    }
}

/// Crops the centre to the target's aspect ratio and scales down to at most the target size;
/// small images are not scaled up.
fn fit(img: &DynamicImage, (tw, th): (u32, u32)) -> DynamicImage {
    let (w, h) = (img.width(), img.height());
    if w >= tw && h >= th {
        return img.resize_to_fill(tw, th, FilterType::Triangle);
    }
    // The largest box of the target's shape inside the image.
    let (cw, ch) = if u64::from(w) * u64::from(th) > u64::from(h) * u64::from(tw) {
        ((u64::from(h) * u64::from(tw) / u64::from(th)) as u32, h)
    } else {
        (w, (u64::from(w) * u64::from(th) / u64::from(tw)) as u32)
    };
    let (cw, ch) = (cw.max(1), ch.max(1));
    img.crop_imm((w - cw) / 2, (h - ch) / 2, cw, ch)
}

fn encode(img: &DynamicImage) -> Result<Processed, Error> {
    let rgba = img.color().has_alpha().then(|| img.to_rgba8());
    let transparent = rgba.as_ref().is_some_and(|i| i.pixels().any(|p| p.0[3] < 255));
    let mut bytes = Vec::new();
    let content_type = if let Some(rgba) = rgba.filter(|_| transparent) {
        DynamicImage::ImageRgba8(rgba)
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut bytes))
            .map_err(|_| Error::Corrupt)?;
        "image/png"
    } else {
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        rgb.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut bytes,
            JPEG_QUALITY,
        ))
        .map_err(|_| Error::Corrupt)?;
        "image/jpeg"
    };
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Processed {
        bytes,
        content_type,
        width: img.width(),
        height: img.height(),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    const MAX: usize = 8 * 1024 * 1024;

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .unwrap();
        out
    }

    fn jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img.clone())
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap();
        out
    }

    /// A JPEG carrying an EXIF segment (APP1) right after SOI, the way cameras write it, with a
    /// GPS-looking marker string and orientation 6 ("turn 90° clockwise").
    fn jpeg_with_exif(img: &RgbImage) -> Vec<u8> {
        let plain = jpeg(img);
        // TIFF header (little endian), one IFD entry: tag 0x0112 orientation, SHORT, 1, value 6.
        let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(b"GPS 52.52N 13.40E secret-camera-serial");
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let len = u16::try_from(app1.len() + 2).unwrap().to_be_bytes();
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1, len[0], len[1]];
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn metadata_is_gone_and_orientation_applied() {
        // 60 wide, 20 high: red left half, blue right half.
        let img = RgbImage::from_fn(60, 20, |x, _| {
            if x < 30 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let input = jpeg_with_exif(&img);
        assert!(contains(&input, b"secret-camera-serial"));
        let out = process(&input, Purpose::Avatar, MAX).unwrap();
        assert!(!contains(&out.bytes, b"Exif"));
        assert!(!contains(&out.bytes, b"secret-camera-serial"));
        assert_eq!(out.content_type, "image/jpeg");
        assert_eq!((out.width, out.height), (20, 20));
        // Upright it is 20 wide and 60 high, so its 3:1 banner crop is 20×6 (unturned: 60×20).
        let out = process(&input, Purpose::Banner, MAX).unwrap();
        assert_eq!((out.width, out.height), (20, 6));
        let decoded = image::load_from_memory(&out.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (20, 6));
    }

    #[test]
    fn large_images_are_cropped_and_scaled() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1200, 800, Rgb([10, 200, 30])));
        let out = process(&png(img.clone()), Purpose::Avatar, MAX).unwrap();
        assert_eq!((out.width, out.height), (400, 400));
        let out = process(&png(img), Purpose::Banner, MAX).unwrap();
        assert_eq!((out.width, out.height), (1200, 400));
        let big = DynamicImage::ImageRgb8(RgbImage::from_pixel(3000, 1200, Rgb([1, 2, 3])));
        let out = process(&png(big), Purpose::Banner, MAX).unwrap();
        assert_eq!((out.width, out.height), (1500, 500));
    }

    #[test]
    fn transparency_keeps_png_and_opaque_becomes_jpeg() {
        let clear = RgbaImage::from_fn(50, 50, |x, _| Rgba([0, 0, 0, if x < 25 { 0 } else { 255 }]));
        let out = process(&png(DynamicImage::ImageRgba8(clear)), Purpose::Avatar, MAX).unwrap();
        assert_eq!(out.content_type, "image/png");
        assert_eq!(out.extension(), "png");
        let opaque = RgbaImage::from_pixel(50, 50, Rgba([9, 9, 9, 255]));
        let out = process(&png(DynamicImage::ImageRgba8(opaque)), Purpose::Avatar, MAX).unwrap();
        assert_eq!(out.content_type, "image/jpeg");
        assert_eq!(out.sha256.len(), 64);
    }

    #[test]
    fn content_decides_not_the_name() {
        assert!(matches!(
            process(
                b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                Purpose::Avatar,
                MAX
            ),
            Err(Error::Unsupported)
        ));
        assert!(matches!(
            process(b"GIF89a", Purpose::Avatar, MAX),
            Err(Error::Corrupt)
        ));
        // BMP decodes fine elsewhere but is not a format we take.
        assert!(matches!(
            process(b"BM\0\0\0\0\0\0\0\0", Purpose::Avatar, MAX),
            Err(Error::Unsupported)
        ));
        let mut truncated = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
            40,
            40,
            Rgb([1, 1, 1]),
        )));
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            process(&truncated, Purpose::Avatar, MAX),
            Err(Error::Corrupt)
        ));
        assert!(matches!(process(b"", Purpose::Avatar, MAX), Err(Error::Missing)));
    }

    #[test]
    fn limits_refuse_before_decoding_too_much() {
        let input = png(DynamicImage::ImageLuma8(image::GrayImage::new(MAX_SIDE + 1, 2)));
        assert!(
            input.len() < 100_000,
            "a highly compressible bomb: {}",
            input.len()
        );
        assert!(matches!(
            process(&input, Purpose::Banner, MAX),
            Err(Error::TooManyPixels { max: MAX_SIDE })
        ));
        assert!(matches!(
            process(&input, Purpose::Banner, input.len() - 1),
            Err(Error::TooLarge { max_mib: 1 })
        ));
    }
}
