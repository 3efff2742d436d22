"""Ximea xiAPI ``imageMetadata`` documents in the exact structure real cameras write.

Hand-written (not ``core.capture.metadata.build_ximea_xml``), so the parser is tested against
the producer's layout: the fields NeuroHSI reads sit among elements it must ignore
(frame counters, sensor_info, filter responses, other apiContextList keys), the band
pattern position is an ATTRIBUTE, and the wavelength is the ``order="1"`` peak.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

# Per pattern position (row-major 5x5), non-monotonic as real SM5X5-NIR calibrations are:
# neighbouring positions can be ~200 nm apart.
REAL_POSITION_WAVELENGTHS = (
    886.4, 898.1, 685.2, 932.7, 946.0,
    837.9, 849.6, 873.3, 861.0, 710.8,
    788.2, 800.9, 813.5, 825.1, 958.3,
    739.7, 751.4, 763.0, 775.8, 909.9,
    667.3, 676.8, 697.5, 721.6, 921.2,
)


def real_xml(
    *,
    model: str = "MQ022HG-IM-SM5X5-NIR",
    serial: str = "CAMAU1912007",
    exposure_us: float = 40000,
    gain_db: float = 0.0,
    acq: str = "2019-05-02T11:20:33.123",
    temp: float = 38.25,
    active_wh: tuple[int, int] = (2048, 1088),
    absolute_xy: tuple[int, int] = (0, 0),
    filter_xywh: tuple[int, int, int, int] = (0, 0, 2045, 1085),
    pattern_wh: tuple[int, int] = (5, 5),
    wavelengths=REAL_POSITION_WAVELENGTHS,
    secondary_first: bool = True,
) -> str:
    """The ImageDescription of a real xiAPI TIFF, with unrelated elements around the ones NeuroHSI reads."""
    ox, oy, w, h = filter_xywh
    bands = []
    for index, wl in enumerate(wavelengths):
        peaks = f'<peak version="0" order="1"><wavelength_nm>{wl}</wavelength_nm><fwhm_nm>14.2</fwhm_nm></peak>'
        second = f'<peak version="0" order="2"><wavelength_nm>{wl - 230.5:.1f}</wavelength_nm></peak>'
        # Real files list the second-order peak before the primary for some bands.
        peaks = second + peaks if secondary_first and index % 3 == 0 else peaks + second
        bands.append(
            f'<band version="2" selected="true" pattern_position_index="{index}">'
            f"<name>band_{index}</name><peaks>{peaks}</peaks>"
            "<response_composition><data>0.01 0.02 0.4 0.9 0.3</data></response_composition></band>"
        )
    api = "\n".join(
        [
            "xiApiImg:Width=%d" % active_wh[0],
            "xiApiImg:Height=%d" % active_wh[1],
            "xiApiImg:ActiveAreaWidth=%d" % active_wh[0],
            "xiApiImg:ActiveAreaHeight=%d" % active_wh[1],
            "xiApiPar:AbsoluteOffsetX=%d" % absolute_xy[0],
            "xiApiPar:AbsoluteOffsetY=%d" % absolute_xy[1],
            "xiApiPar:ImageDataFormat=XI_RAW16",
            "xiApiPar:SensorBitDepth=10",
            "xiApiImg:FrameNumber=1742",
        ]
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<imageMetadata version="1.0">
  <swVersion>4.27.07</swVersion>
  <width>{active_wh[0]}</width><height>{active_wh[1]}</height>
  <cameraModel>{model}</cameraModel>
  <cameraSerialNumber>{serial}</cameraSerialNumber>
  <cameraUserId></cameraUserId>
  <exposure>{exposure_us}</exposure>
  <gain>{gain_db}</gain>
  <acqDateTime>{acq}</acqDateTime>
  <tempSensor>{temp}</tempSensor>
  <tempHousing>31.0</tempHousing>
  <frameNumber>1742</frameNumber>
  <apiContextList>{api}
</apiContextList>
  <hsiParams>
    <sensor_calibration version="1">
      <sensor_info><width>2048</width><height>1088</height><name>CMV2000</name></sensor_info>
      <filter_info version="2">
        <serial_number>FP-18-0077</serial_number>
        <filter_zones>
          <filter_zone layout="TILED" index="1"><pattern_width>99</pattern_width></filter_zone>
          <filter_zone layout="MOSAIC" index="0">
            <filter_area><offset_x>{ox}</offset_x><offset_y>{oy}</offset_y><width>{w}</width><height>{h}</height></filter_area>
            <pattern_width>{pattern_wh[0]}</pattern_width>
            <pattern_height>{pattern_wh[1]}</pattern_height>
            <spectral_range_start_nm>665</spectral_range_start_nm>
            <spectral_range_end_nm>960</spectral_range_end_nm>
            <measurement_range_start_nm>600</measurement_range_start_nm>
            <bands>{"".join(bands)}</bands>
          </filter_zone>
        </filter_zones>
      </filter_info>
    </sensor_calibration>
  </hsiParams>
</imageMetadata>
"""


def write_real_frame(path: Path, frame: np.ndarray, **xml) -> Path:
    """A single-page TIFF as xiAPI writes it: the frame and the XML in ImageDescription."""
    tifffile.imwrite(path, np.asarray(frame), description=real_xml(**xml), metadata=None)
    return Path(path)
