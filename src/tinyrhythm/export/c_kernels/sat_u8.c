static uint8_t sat_u8(long v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
