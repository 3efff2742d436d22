"""Ximea ``imageMetadata`` XML, as written into the TIFF ImageDescription tag.

Real xiAPI files (e.g. an MQ022HG-IM-SM5X5-NIR frame) look like::

    <imageMetadata>
      <cameraModel>MQ022HG-IM-SM5X5-NIR</cameraModel> <cameraSerialNumber>..</cameraSerialNumber>
      <exposure>40000</exposure> (us) <gain>0.0</gain> (dB) <acqDateTime>2019-05-02T11:20:33</acqDateTime>
      <tempSensor>38.5</tempSensor>
      <apiContextList>xiApiImg:ActiveAreaWidth=2048
    xiApiPar:AbsoluteOffsetY=32 ...</apiContextList>   (one Key=Value per line)
      <hsiParams><sensor_calibration version="1"><filter_info version="2"><filter_zones>
        <filter_zone layout="MOSAIC">
          <filter_area><offset_x/><offset_y/><width/><height/></filter_area>   (sensor coordinates)
          <pattern_width>5</pattern_width><pattern_height>5</pattern_height>
          <spectral_range_start_nm/><spectral_range_end_nm/>
          <bands><band version="2" selected="true" pattern_position_index="7">
                   <peaks><peak version="0" order="1"><wavelength_nm>..</wavelength_nm></peak></peaks>
          </band>...</bands>
    ...

The older simple form (``camera_model``, ``acq_time``, ``<band><pattern_position_index>``
child, ``<wavelength_nm>`` directly in the band) is read too. The parser is
tolerant about where elements sit but strict about values: a present but
malformed number is an error, and every size is bounded before anyone allocates.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass

_CAMERA_MODEL_TAGS = ("cameraModel", "camera_model", "device_name", "model")
_SERIAL_TAGS = ("cameraSerialNumber", "camera_serial", "cameraSerial", "serial_number", "device_sn", "serial")
_EXPOSURE_TAGS = ("exposure", "exposure_us", "exposureTime")
_GAIN_TAGS = ("gain", "gain_db")
_TIME_TAGS = ("acqDateTime", "acq_time", "acquisition_time", "timestamp", "time")
_TEMPERATURE_TAGS = ("tempSensor", "temperature", "sensor_temperature")
# Bounds on what a header may claim, checked before any array is sized from it: the
# largest Ximea mosaic is 5x5; 16x16 leaves room; sensors are far below 65536 px a side.
MAX_PATTERN_SIDE = 16
MAX_SENSOR_SIDE = 65536
MAX_DESCRIPTION_CHARS = 16 * 1024 * 1024
_GEOMETRY_KEYS = ("ActiveAreaWidth", "ActiveAreaHeight", "AbsoluteOffsetX", "AbsoluteOffsetY")
_API_LINE = re.compile(r"^\s*(xiApi(?:Img|Par)):([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class CaptureMetadata:
    """What the camera says about a frame. Every field is optional.

    ``filter_offset_xy`` / ``filter_size_wh`` are in SENSOR pixels; ``absolute_offset_xy``
    is where this frame's pixel (0, 0) sits on the sensor and ``active_area_wh`` the
    frame's own size (a region-of-interest capture has a smaller area and an offset).
    ``wavelengths_nm`` is per PATTERN POSITION (index ``row * pw + col``), primary peak.
    """

    camera_model: str | None = None
    serial: str | None = None
    exposure_us: float | None = None
    gain_db: float | None = None
    acquisition_time: str | None = None
    filter_offset_xy: tuple[int, int] | None = None
    filter_size_wh: tuple[int, int] | None = None
    pattern_wh: tuple[int, int] | None = None
    wavelengths_nm: tuple[float, ...] | None = None
    temperature_c: float | None = None
    active_area_wh: tuple[int, int] | None = None
    absolute_offset_xy: tuple[int, int] | None = None
    spectral_range_nm: tuple[float, float] | None = None
    # Other apiContextList lines, ("xiApiImg:Key", "value") in file order (the four geometry keys are fields)
    api_context: tuple[tuple[str, str], ...] | None = None

    @property
    def has_calibration(self) -> bool:
        """True when the filter geometry needed for a camera profile is present."""
        return (
            self.filter_offset_xy is not None
            and self.filter_size_wh is not None
            and self.pattern_wh is not None
        )

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists, the API context a dict)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        if self.api_context is not None:
            out["api_context"] = {k: v for k, v in self.api_context}
        return out


def _text(root: ET.Element, tags: tuple[str, ...]) -> str | None:
    for tag in tags:
        node = root.find(f".//{tag}")
        if node is not None and node.text is not None and node.text.strip():
            return node.text.strip()
    return None


def _to_number(text: str, what: str, kind: type = float):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"metadata element <{what}> is not a number: {text[:40]!r}") from None
    if not math.isfinite(value):  # NaN would pass every later range check (it compares false)
        raise ValueError(f"metadata element <{what}> is not a finite number: {text[:40]!r}")
    if kind is int:
        # Pixel offsets and sizes: "4.0" is fine, "4.5" or "inf" is a broken file, not 4.
        if not value.is_integer():
            raise ValueError(f"metadata element <{what}> is not an integer: {text!r}")
        return int(value)
    return value


def _number(root: ET.Element, tags: tuple[str, ...], kind: type = float):
    text = _text(root, tags)
    return None if text is None else _to_number(text, tags[0], kind)


def _bounded(pair, what: str, low: int, high: int):
    if pair is None:
        return None
    if not all(low <= v <= high for v in pair):
        raise ValueError(f"metadata {what} {pair[0]}x{pair[1]} is outside {low}..{high} (corrupt header?)")
    return pair


def _api_context(root: ET.Element) -> tuple[tuple[str, str], ...] | None:
    node = root.find(".//apiContextList")
    if node is None or not (node.text or "").strip():
        return None
    entries = []
    for line in node.text.splitlines():
        match = _API_LINE.match(line)
        if match:
            entries.append((f"{match[1]}:{match[2]}", match[3]))
    return tuple(entries) or None


def _other_context(context) -> tuple[tuple[str, str], ...] | None:
    """The API lines not already parsed into geometry fields (shown by ``info`` as they are)."""
    rest = tuple((k, v) for k, v in context or () if k.split(":", 1)[-1] not in _GEOMETRY_KEYS)
    return rest or None


def _api_pair(context, key_x: str, key_y: str):
    """Integer pair of two ``xiApiImg``/``xiApiPar`` keys (Img wins when both are given)."""
    if not context:
        return None
    values = {}
    for prefix in ("xiApiPar", "xiApiImg"):  # later wins: xiApiImg describes the image itself
        for key, value in context:
            if key in (f"{prefix}:{key_x}", f"{prefix}:{key_y}"):
                values[key.split(":", 1)[1]] = _to_number(value, key, int)
    if key_x in values and key_y in values:
        return values[key_x], values[key_y]
    return None


def _zone(root: ET.Element) -> ET.Element | None:
    zones = root.findall(".//filter_zones/filter_zone") or root.findall(".//filter_zone")
    for zone in zones:
        if (zone.get("layout") or "").upper() == "MOSAIC":
            return zone
    return zones[0] if zones else None


def _band_wavelength(band: ET.Element) -> float | None:
    """Primary peak (``order="1"``) of a band; the first peak, or a bare ``wavelength_nm``, otherwise."""
    peaks = band.findall("./peaks/peak")
    primary = [p for p in peaks if (p.get("order") or "").strip() == "1"] or peaks
    for node in ([primary[0]] if primary else []) + [band]:
        value = node.find("wavelength_nm")
        if value is not None and value.text is not None and value.text.strip():
            # Some files list several peaks in one element ("730.1, 520.4"): the first is the primary.
            return _to_number(re.split(r"[,;\s]+", value.text.strip())[0], "wavelength_nm")
    return None


def _bands(zone: ET.Element, pattern) -> tuple[float, ...] | None:
    n_positions = None if pattern is None else pattern[0] * pattern[1]
    bands: dict[int, float] = {}
    for band in zone.iter("band"):
        attribute = band.get("pattern_position_index")
        index = (
            _to_number(attribute, "band pattern_position_index", int)
            if attribute is not None
            else _number(band, ("pattern_position_index",), int)
        )
        wavelength = _band_wavelength(band)
        if index is None or wavelength is None:
            continue
        limit = n_positions if n_positions is not None else MAX_PATTERN_SIDE**2
        if not 0 <= index < limit:
            raise ValueError(f"metadata band pattern_position_index {index} is outside 0..{limit - 1}")
        bands[index] = wavelength
    return tuple(bands[i] for i in sorted(bands)) if bands else None


def parse_ximea_xml(text: str | bytes) -> CaptureMetadata:
    """Parse an ``imageMetadata`` document.

    Raises ``ValueError`` when the text is not XML, a numeric field is malformed,
    or a size is beyond what any camera writes (pattern sides 1..16, areas < 65536).
    """
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"ImageDescription is {len(text)} characters, more than any camera writes")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"ImageDescription is not valid XML ({exc})") from None
    except RecursionError:
        raise ValueError("ImageDescription is nested too deeply to be camera metadata") from None

    offset = size = pattern = wavelengths = spectral = None
    zone = _zone(root)
    if zone is not None:
        area = zone.find(".//filter_area")
        if area is not None:
            ox, oy = _number(area, ("offset_x",), int), _number(area, ("offset_y",), int)
            w, h = _number(area, ("width",), int), _number(area, ("height",), int)
            if None not in (ox, oy):
                offset = _bounded((ox, oy), "filter-area offset", 0, MAX_SENSOR_SIDE)
            if None not in (w, h):
                size = _bounded((w, h), "filter-area size", 0, MAX_SENSOR_SIDE)
        pw, ph = _number(zone, ("pattern_width",), int), _number(zone, ("pattern_height",), int)
        if None not in (pw, ph):
            pattern = _bounded((pw, ph), "mosaic pattern", 1, MAX_PATTERN_SIDE)
        start = _number(zone, ("spectral_range_start_nm",))
        end = _number(zone, ("spectral_range_end_nm",))
        if None not in (start, end):
            spectral = (start, end)
        wavelengths = _bands(zone, pattern)

    context = _api_context(root)
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
        temperature_c=_number(root, _TEMPERATURE_TAGS),
        active_area_wh=_bounded(
            _api_pair(context, "ActiveAreaWidth", "ActiveAreaHeight"), "active area", 1, MAX_SENSOR_SIDE
        ),
        absolute_offset_xy=_bounded(
            _api_pair(context, "AbsoluteOffsetX", "AbsoluteOffsetY"), "absolute offset", 0, MAX_SENSOR_SIDE
        ),
        spectral_range_nm=spectral,
        api_context=_other_context(context),
    )


def build_ximea_xml(meta: CaptureMetadata) -> str:
    """Write ``meta`` in the xiAPI structure (see the module docstring); ``parse_ximea_xml`` reads it back."""
    root = ET.Element("imageMetadata")

    def add(parent: ET.Element, tag: str, value) -> ET.Element:
        node = ET.SubElement(parent, tag)
        if value is not None:
            node.text = str(value)
        return node

    for tag, value in (
        ("cameraModel", meta.camera_model),
        ("cameraSerialNumber", meta.serial),
        ("exposure", meta.exposure_us),
        ("gain", meta.gain_db),
        ("acqDateTime", meta.acquisition_time),
        ("tempSensor", meta.temperature_c),
    ):
        if value is not None:
            add(root, tag, value)
    context = [(k, v) for k, v in meta.api_context or () if k.split(":", 1)[-1] not in _GEOMETRY_KEYS]
    if meta.active_area_wh is not None:
        context += [("xiApiImg:ActiveAreaWidth", str(meta.active_area_wh[0]))]
        context += [("xiApiImg:ActiveAreaHeight", str(meta.active_area_wh[1]))]
    if meta.absolute_offset_xy is not None:
        context += [("xiApiPar:AbsoluteOffsetX", str(meta.absolute_offset_xy[0]))]
        context += [("xiApiPar:AbsoluteOffsetY", str(meta.absolute_offset_xy[1]))]
    if context:
        add(root, "apiContextList", "\n".join(f"{k}={v}" for k, v in context))
    calibration = (meta.filter_offset_xy, meta.filter_size_wh, meta.pattern_wh, meta.wavelengths_nm, meta.spectral_range_nm)
    if any(part is not None for part in calibration):
        hsi = ET.SubElement(root, "hsiParams")
        calib = ET.SubElement(hsi, "sensor_calibration", version="1")
        info = ET.SubElement(calib, "filter_info", version="2")
        zone = ET.SubElement(ET.SubElement(info, "filter_zones"), "filter_zone", layout="MOSAIC")
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
        if meta.spectral_range_nm is not None:
            add(zone, "spectral_range_start_nm", repr(float(meta.spectral_range_nm[0])))
            add(zone, "spectral_range_end_nm", repr(float(meta.spectral_range_nm[1])))
        if meta.wavelengths_nm is not None:
            bands = ET.SubElement(zone, "bands")
            for index, wavelength in enumerate(meta.wavelengths_nm):
                band = ET.SubElement(bands, "band", version="2", selected="true", pattern_position_index=str(index))
                peak = ET.SubElement(ET.SubElement(band, "peaks"), "peak", version="0", order="1")
                add(peak, "wavelength_nm", repr(float(wavelength)))  # shortest text that reads back exactly
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
