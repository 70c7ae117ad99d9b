/**
 * RTP and RTCP packets for the data-plane tests, built and parsed with werift-rtp so the
 * bytes on the wire are what a real endpoint sends.
 */
import { RtcpPacketConverter, RtcpSenderInfo, RtcpSrPacket, RtpHeader, RtpPacket } from 'werift-rtp';

export interface RtpFields {
  seq?: number;
  ssrc?: number;
  payloadType?: number;
  marker?: boolean;
  timestamp?: number;
  payload?: Buffer;
}

/** A serialized RTP packet (version 2) with a 160-byte PCMU-like payload unless one is given. */
export function rtp(fields: RtpFields = {}): Buffer {
  const header = new RtpHeader({
    payloadType: fields.payloadType ?? 0,
    sequenceNumber: fields.seq ?? 1,
    timestamp: fields.timestamp ?? 160 * (fields.seq ?? 1),
    ssrc: fields.ssrc ?? 0x11223344,
    marker: fields.marker ?? false,
  });
  const payload = fields.payload ?? Buffer.alloc(160, (fields.seq ?? 1) & 0xff);
  return new RtpPacket(header, payload).serialize();
}

/** A serialized RTCP sender report (packet type 200). */
export function rtcpSenderReport(ssrc = 0x11223344, packetCount = 1): Buffer {
  return new RtcpSrPacket({
    ssrc,
    senderInfo: new RtcpSenderInfo({ ntpTimestamp: 0x1234567800000000n, rtpTimestamp: 160 * packetCount, packetCount, octetCount: 160 * packetCount }),
  }).serialize();
}

/** A minimal RTCP-shaped packet (version 2, 8 bytes) with the given packet type byte. */
export function rtcpOfType(packetType: number): Buffer {
  return Buffer.from([0x80, packetType, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
}

export function parseRtp(data: Buffer): RtpPacket {
  return RtpPacket.deSerialize(data);
}

export function parseRtcpSsrc(data: Buffer): number {
  const [first] = RtcpPacketConverter.deSerialize(data);
  if (!(first instanceof RtcpSrPacket)) throw new Error('not an RTCP sender report');
  return first.ssrc;
}
