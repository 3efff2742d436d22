"""Ximea ``imageMetadata`` XML, as written into the TIFF ImageDescription tag.

The parser is tolerant about where elements sit (Ximea software versions nest
them differently) but strict about values: a present but malformed number is an
error, not a silent ``None``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass

_CAMERA_MODEL_TAGS = ("camera_model", "cameraModel", "device_name", "model")
_SERIAL_TAGS = ("camera_serial", "cameraSerial", "serial_number", "device_sn", "serial")
_EXPOSURE_TAGS = ("exposure", "exposure_us", "exposureTime")
_GAIN_TAGS = ("gain", "gain_db")
_TIME_TAGS = ("acq_time", "acquisition_time", "timestamp", "time")


@dataclass(frozen=True)
class CaptureMetadata:
    """What the camera says about a frame. Every field is optional."""

    camera_model: str | None = None
    serial: str | None = None
    exposure_us: float | None = None
    gain_db: float | None = None
    acquisition_time: str | None = None
    filter_offset_xy: tuple[int, int] | None = None
    filter_size_wh: tuple[int, int] | None = None
    pattern_wh: tuple[int, int] | None = None
    wavelengths_nm: tuple[float, ...] | None = None

    @property
    def has_calibration(self) -> bool:
        """True when the filter geometry needed for a camera profile is present."""
        return (
            self.filter_offset_xy is not None
            and self.filter_size_wh is not None
            and self.pattern_wh is not None
        )

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


def _text(root: ET.Element, tags: tuple[str, ...]) -> str | None:
    for tag in tags:
        node = root.find(f".//{tag}")
        if node is not None and node.text is not None and node.text.strip():
            return node.text.strip()
    return None


def _number(root: ET.Element, tags: tuple[str, ...], kind: type = float):
    text = _text(root, tags)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"metadata element <{tags[0]}> is not a number: {text!r}") from None
    if kind is int:
        # Pixel offsets and sizes: "4.0" is fine, "4.5" or "inf" is a broken file, not 4.
        if not value.is_integer():
            raise ValueError(f"metadata element <{tags[0]}> is not an integer: {text!r}")
        return int(value)
    return value


def parse_ximea_xml(text: str | bytes) -> CaptureMetadata:
    """Parse an ``imageMetadata`` document.

    Raises ``ValueError`` when the text is not XML or a numeric field is malformed.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"ImageDescription is not valid XML ({exc})") from None

    offset = size = pattern = wavelengths = None
    zone = root.find(".//filter_zones/filter_zone")
    if zone is None:
        zone = root.find(".//filter_zone")
    if zone is not None:
        area = zone.find(".//filter_area")
        if area is not None:
            ox, oy = _number(area, ("offset_x",), int), _number(area, ("offset_y",), int)
            w, h = _number(area, ("width",), int), _number(area, ("height",), int)
            if None not in (ox, oy):
                offset = (ox, oy)
            if None not in (w, h):
                size = (w, h)
        pw, ph = _number(zone, ("pattern_width",), int), _number(zone, ("pattern_height",), int)
        if None not in (pw, ph):
            pattern = (pw, ph)
        bands: dict[int, float] = {}
        for band in zone.iter("band"):
            index = _number(band, ("pattern_position_index",), int)
            wavelength = _number(band, ("wavelength_nm",), float)
            if index is not None and wavelength is not None:
                bands[index] = wavelength
        if bands:
            wavelengths = tuple(bands[i] for i in sorted(bands))

    return CaptureMetadata(
        camera_model=_text(root, _CAMERA_MODEL_TAGS),
        serial=_text(root, _SERIAL_TAGS),
        exposure_us=_number(root, _EXPOSURE_TAGS),
        gain_db=_number(root, _GAIN_TAGS),
        acquisition_time=_text(root, _TIME_TAGS),
        filter_offset_xy=offset,
        filter_size_wh=size,
        pattern_wh=pattern,
        wavelengths_nm=wavelengths,
    )


def build_ximea_xml(meta: CaptureMetadata) -> str:
    """Write ``meta`` as an ``imageMetadata`` document that ``parse_ximea_xml`` reads back."""
    root = ET.Element("imageMetadata")

    def add(parent: ET.Element, tag: str, value) -> ET.Element:
        node = ET.SubElement(parent, tag)
        if value is not None:
            node.text = str(value)
        return node

    for tag, value in (
        ("camera_model", meta.camera_model),
        ("camera_serial", meta.serial),
        ("exposure", meta.exposure_us),
        ("gain", meta.gain_db),
        ("acq_time", meta.acquisition_time),
    ):
        if value is not None:
            add(root, tag, value)
    calibration = (meta.filter_offset_xy, meta.filter_size_wh, meta.pattern_wh, meta.wavelengths_nm)
    if any(part is not None for part in calibration):
        zone = ET.SubElement(
            ET.SubElement(
                ET.SubElement(ET.SubElement(ET.SubElement(root, "hsiParams"), "sensor_calibration"), "filter_info"),
                "filter_zones",
            ),
            "filter_zone",
        )
        if meta.filter_offset_xy is not None or meta.filter_size_wh is not None:
            area = ET.SubElement(zone, "filter_area")
            if meta.filter_offset_xy is not None:
                add(area, "offset_x", meta.filter_offset_xy[0])
                add(area, "offset_y", meta.filter_offset_xy[1])
            if meta.filter_size_wh is not None:
                add(area, "width", meta.filter_size_wh[0])
                add(area, "height", meta.filter_size_wh[1])
        if meta.pattern_wh is not None:
            add(zone, "pattern_width", meta.pattern_wh[0])
            add(zone, "pattern_height", meta.pattern_wh[1])
        if meta.wavelengths_nm is not None:
            bands = ET.SubElement(zone, "bands")
            for index, wavelength in enumerate(meta.wavelengths_nm):
                band = ET.SubElement(bands, "band")
                add(band, "pattern_position_index", index)
                add(band, "wavelength_nm", repr(float(wavelength)))  # shortest text that reads back exactly
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
